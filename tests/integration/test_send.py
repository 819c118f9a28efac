"""hookmq-send against a real gateway: every scheme's bundled samples are accepted (202) and
published, repeated sends are not collapsed by the replay cache, --bad-signature and --stale
are refused (401, exit 1), and usage/config errors exit 2."""
import glob
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import hqtest  # noqa: E402
from gwfixture import Gateway, sources_block, SECRETS  # noqa: E402

SAMPLES = os.path.join(hqtest.SRC, "conf", "samples")
QUEUE = "test.send.all"
# twilio and square sources with a public `url`: that URL is signed, not the one posted to
EXTRA = """  { name = "snd-twurl"; scheme = "twilio"; secrets = [ "tw-token" ];
    url = "https://hooks.example.com/webhooks/calls"; },
  { name = "snd-squrl"; scheme = "square"; secrets = [ "sq-key" ];
    url = "https://hooks.example.com/webhooks/square"; },"""
TIMESTAMPED = ("stripe", "slack", "standard", "paddle", "zoom", "mailgun", "linear")


def samples_of(scheme):
    out = []
    for p in sorted(glob.glob(os.path.join(SAMPLES, scheme, "*"))):
        base = os.path.basename(p)
        for ext in (".json", ".form"):
            if base.endswith(ext):
                out.append(base[: -len(ext)])
    return out


class SendTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(sources_block("snd", EXTRA))
        cls.gw.apply()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["snd-%s.#" % s for s in list(SECRETS) + ["none"]])
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        hqtest.delete_queue(QUEUE)

    def send(self, source, *args, env=None):
        e = dict(os.environ)
        e.pop("HOOKMQ_SAMPLES_DIR", None)
        e.update(env or {})
        return subprocess.run([hqtest.binary("hookmq-send"), "-c", self.gw.config,
                               "--source", source] + list(args),
                              capture_output=True, text=True, timeout=60, env=e)

    def test_every_scheme_sample_accepted_and_published(self):
        hqtest.purge(QUEUE)
        expected = {}
        for scheme in list(SECRETS) + ["none"]:
            names = samples_of(scheme)
            self.assertTrue(names, "no sample for scheme %s in %s" % (scheme, SAMPLES))
            for name in names:
                r = self.send("snd-" + scheme, "--sample", name)
                self.assertEqual(r.returncode, 0, "%s/%s: %s %s" % (scheme, name, r.stdout, r.stderr))
                lines = r.stdout.splitlines()
                self.assertEqual(lines[0], "HTTP 202", r.stdout)
                self.assertIn('"id"', r.stdout)
                expected["snd-" + scheme] = expected.get("snd-" + scheme, 0) + 1
        total = sum(expected.values())
        hqtest.wait_for(lambda: hqtest.queue_depth(QUEUE) >= total, 30, what="%d events" % total)
        msgs = hqtest.get_messages(QUEUE)
        got = {}
        for m in msgs:
            src = m["properties"]["headers"]["hookmq-source"]
            got[src] = got.get(src, 0) + 1
        self.assertEqual(got, expected)
        keys = {m["routing_key"] for m in msgs}
        self.assertIn("snd-github.push", keys)
        self.assertIn("snd-stripe.invoice.payment_failed", keys)
        self.assertIn("snd-shopify.orders.create", keys)
        self.assertIn("snd-slack.app_mention", keys)
        self.assertIn("snd-gitlab.push_hook", keys)
        # the body is the sample with its placeholders filled in: valid JSON, no {{ left
        for m in msgs:
            self.assertNotIn(b"{{", m["body"])
            if m["properties"].get("content_type") == "application/json":
                json.loads(m["body"])

    def test_repeated_sends_are_not_replays(self):
        hqtest.purge(QUEUE)
        ids = set()
        for scheme, sample in (("github", "push"), ("shopify", "orders/create"),
                               ("stripe", "invoice.payment_failed"), ("zoom", "meeting.started"),
                               ("gitlab", "push"), ("token", "order.created")):
            for _ in range(2):
                r = self.send("snd-" + scheme, "--sample", sample)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                ids.add((scheme, json.loads(r.stdout.splitlines()[1])["id"]))
        self.assertEqual(len(ids), 12, ids)
        hqtest.wait_for(lambda: hqtest.queue_depth(QUEUE) >= 12, 30, what="12 events")
        self.assertEqual(len(hqtest.get_messages(QUEUE)), 12)
        st = self.gw.metrics()
        self.assertNotIn("hookmq_gateway_replay_cache_hits_total 1", st)

    def test_configured_url_is_signed(self):
        for source, samples in (("snd-twurl", ("incoming-message", "event-stream")),
                                ("snd-squrl", ("payment.created",))):
            for name in samples:
                r = self.send(source, "--sample", name)
                self.assertEqual(r.returncode, 0, "%s/%s: %s %s" % (source, name, r.stdout, r.stderr))
                r = self.send(source, "--sample", name, "--bad-signature")
                self.assertEqual(r.returncode, 1)

    def test_event_id_option(self):
        r = self.send("snd-stripe", "--sample", "invoice.payment_failed", "--event-id",
                      "evt_fixed_for_test_1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout.splitlines()[1])["id"], "evt_fixed_for_test_1")
        r = self.send("snd-github", "--sample", "push", "--event-id", "gh-delivery-fixed-1")
        self.assertEqual(json.loads(r.stdout.splitlines()[1])["id"], "gh-delivery-fixed-1")

    def test_bad_signature_401(self):
        for scheme in SECRETS:
            name = samples_of(scheme)[0]
            r = self.send("snd-" + scheme, "--sample", name, "--bad-signature")
            self.assertEqual(r.returncode, 1, "%s: %s %s" % (scheme, r.stdout, r.stderr))
            self.assertEqual(r.stdout.splitlines()[0], "HTTP 401", scheme)
            body = json.loads(r.stdout.splitlines()[1])
            self.assertEqual(body["error"], "unauthorized")
            # a well-formed but wrong MAC, not a malformed header
            self.assertEqual(body["reason"], "bad_signature", "%s: %s" % (scheme, body))

    def test_stale_401(self):
        for scheme in TIMESTAMPED:
            r = self.send("snd-" + scheme, "--sample", samples_of(scheme)[0], "--stale")
            self.assertEqual(r.returncode, 1, "%s: %s %s" % (scheme, r.stdout, r.stderr))
            self.assertEqual(r.stdout.splitlines()[0], "HTTP 401", scheme)
            self.assertEqual(json.loads(r.stdout.splitlines()[1])["reason"], "stale_timestamp",
                             scheme)
        r = self.send("snd-github", "--sample", "push", "--stale")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no timestamp", r.stderr)

    def test_file_and_print(self):
        d = self.gw.workdir
        f = os.path.join(d, "pull_request.json")
        with open(f, "wb") as fh:
            fh.write(b'{"action":"opened","number":7,"nonce":"{{unique}}"}')
        r = self.send("snd-github", "--file", f, "--print")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("X-GitHub-Event: pull_request\n", r.stdout)
        self.assertIn("X-Hub-Signature-256: sha256=", r.stdout)
        self.assertIn("POST http://127.0.0.1:%d/webhooks/snd-github\n" % self.gw.port, r.stdout)
        self.assertNotIn("{{unique}}", r.stdout)
        r = self.send("snd-github", "--file", f)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # twilio form post with an explicit form file, and square, sign the URL posted to
        r = self.send("snd-twilio", "--sample", "incoming-message", "--print")
        self.assertIn("Content-Type: application/x-www-form-urlencoded\n", r.stdout)
        r = self.send("snd-twilio", "--sample", "event-stream", "--print")
        self.assertIn("?bodySHA256=", r.stdout.splitlines()[0])

    def test_errors_exit_2(self):
        r = self.send("snd-github", "--sample", "no-such-sample")
        self.assertEqual(r.returncode, 2)
        self.assertIn("push", r.stderr)  # lists the samples there are
        r = self.send("nope", "--sample", "push")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no source 'nope'", r.stderr)
        r = self.send("snd-github", "--sample", "../../etc/passwd")
        self.assertEqual(r.returncode, 2)
        r = self.send("snd-github")
        self.assertEqual(r.returncode, 2)
        r = self.send("snd-none", "--sample", "order.created", "--bad-signature")
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([hqtest.binary("hookmq-send"), "-c", "/nonexistent/hookmq.conf",
                            "--source", "x", "--sample", "y"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([hqtest.binary("hookmq-send"), "--version"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("hookmq-send "))

    def test_samples_dir_env_and_no_gateway(self):
        # HOOKMQ_SAMPLES_DIR comes first
        d = os.path.join(self.gw.workdir, "samples", "github")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "push.json"), "w") as fh:
            fh.write('{"custom":"{{uuid}}"}')
        r = self.send("snd-github", "--sample", "push", "--print",
                      env={"HOOKMQ_SAMPLES_DIR": os.path.dirname(d)})
        self.assertIn('{"custom":"', r.stdout)
        # nobody listening: exit 1
        r = self.send("snd-github", "--sample", "push", "--url",
                      "http://127.0.0.1:%d/webhooks/snd-github" % hqtest.free_port(),
                      "--timeout", "5")
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
