"""log.format = "json": every line each program writes is one JSON object with ts, level,
program and msg (plus its fields), suitable for Loki/ELK, and no line carries a secret: not a
source secret, a token, a basic-auth password, a signature value or the broker password. Runs
the gateway (requests of every outcome, a reload, a stop at debug level), hookmq-dlx, and the
worker and the archive logger when they are built."""
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import hqtest  # noqa: E402

GH = "log-gh-secret-7f3a9c"
TOKEN = "log-token-SECRET-51d2"
BASIC = "logger:pa55-SECRET-9e1b"
SOURCE_PREFIX = "lg"
CONSUMER = "lgc"
USER, PASSWORD = "hq-log-user", "broker-pw-SECRET-c0ffee"


def parse_lines(text, program):
    """Every non-empty line as JSON; asserts the shape. Returns the objects."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError as e:
            raise AssertionError("%s line %d is not JSON (%s): %r" % (program, n, e, line))
        if not isinstance(o, dict):
            raise AssertionError("%s line %d is not an object: %r" % (program, n, line))
        for k in ("ts", "level", "program", "msg"):
            if not isinstance(o.get(k), str) or not o[k]:
                raise AssertionError("%s line %d: no %s: %r" % (program, n, k, line))
        if o["program"] != program:
            raise AssertionError("%s line %d: program %r" % (program, n, o["program"]))
        if o["level"] not in ("error", "warn", "info", "debug"):
            raise AssertionError("%s line %d: level %r" % (program, n, o["level"]))
        datetime.datetime.strptime(o["ts"].rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")
        out.append(o)
    return out


class JsonLogsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # a broker user with a password that must never show up in a log
        hqtest.mgmt("PUT", "/users/" + USER, {"password": PASSWORD, "tags": ""})
        hqtest.mgmt("PUT", "/permissions/%2f/" + USER, {"configure": ".*", "write": ".*", "read": ".*"})
        cls.dir = tempfile.mkdtemp(prefix="hq-logs-")
        cls.port, cls.mport = hqtest.free_port(), hqtest.free_port()
        cls.config = hqtest.write_config(os.path.join(cls.dir, "hookmq.conf"), """
broker = { uris = [ "amqp://%s:%s@127.0.0.1:%d/%%2f" ]; };
gateway = { listen = "127.0.0.1:%d"; metrics_listen = "127.0.0.1:%d"; spool_dir = "%s/spool"; };
sources = (
  { name = "%s-github"; scheme = "github"; secrets = [ "%s" ]; },
  { name = "%s-token"; scheme = "token"; secrets = [ "%s" ]; },
  { name = "%s-basic"; scheme = "basic"; secrets = [ "%s" ]; }
);
consumers = ( { name = "%s"; bindings = [ "%s-github.#" ]; handler = "log"; } );
archive = { dir = "%s/archive"; };
log = { format = "json"; level = "debug"; };
""" % (USER, PASSWORD, hqtest.AMQP_PORT, cls.port, cls.mport, cls.dir,
       SOURCE_PREFIX, GH, SOURCE_PREFIX, TOKEN, SOURCE_PREFIX, BASIC,
       CONSUMER, SOURCE_PREFIX, cls.dir))
        cls.secrets = [GH, TOKEN, BASIC, BASIC.split(":")[1], PASSWORD]

    @classmethod
    def tearDownClass(cls):
        hqtest.mgmt("DELETE", "/users/" + USER, ok=(200, 204, 404))
        for s in ("", ".dlq", ".retry.10s", ".retry.1m", ".retry.10m", ".retry.1h"):
            hqtest.delete_queue("hookmq." + CONSUMER + s)

    def assert_clean(self, text, program, extra=()):
        for s in list(self.secrets) + list(extra):
            self.assertNotIn(s, text, "%s logged a secret" % program)

    def test_every_program_logs_json_without_secrets(self):
        r = subprocess.run([hqtest.binary("hookmq-dlx"), "apply", "-c", self.config],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        parse_lines(r.stderr, "hookmq-dlx")
        self.assert_clean(r.stdout + r.stderr, "hookmq-dlx")

        # ---- the gateway: accepted, refused, replayed, reloaded, stopped
        gw = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", self.config], name="gateway",
                         workdir=self.dir)
        sigs = []
        try:
            hqtest.wait_http(self.port, proc=gw)
            body = b'{"zen":"log me"}'
            h = hqtest.sign_github(GH, body, event="push")
            sigs.append(h["X-Hub-Signature-256"].split("=", 1)[1])
            post = lambda src, b, hh: hqtest.http_request(self.port, "POST", "/webhooks/" + src, b, hh)[0]
            self.assertEqual(post("lg-github", body, h), 202)
            self.assertEqual(post("lg-github", body, h), 202)  # exact replay
            bad = dict(h, **{"X-Hub-Signature-256": "sha256=" + "ab" * 32})
            self.assertEqual(post("lg-github", b'{"x":1}', bad), 401)
            self.assertEqual(post("lg-token", b"{}", {"Authorization": "Bearer " + TOKEN}), 202)
            self.assertEqual(post("lg-token", b"{}", {"Authorization": "Bearer wrong-" + TOKEN}), 401)
            import base64
            auth = "Basic " + base64.b64encode(BASIC.encode()).decode()
            sigs.append(base64.b64encode(BASIC.encode()).decode())
            self.assertEqual(post("lg-basic", b"{}", {"Authorization": auth}), 202)
            self.assertEqual(post("nope", b"{}", {}), 404)
            gw.signal(signal.SIGHUP)
            hqtest.wait_for(lambda: "config reloaded" in gw.output(), 10, what="reload")
        finally:
            self.assertEqual(gw.stop(), 0, gw.output())
        out = gw.output()
        lines = parse_lines(out, "hookmq-gateway")
        msgs = [o["msg"] for o in lines]
        self.assertIn("started", msgs)
        self.assertIn("config reloaded", msgs)
        self.assertTrue(any(o["level"] == "debug" for o in lines) or len(lines) > 5, msgs)
        self.assert_clean(out, "hookmq-gateway", sigs + ["wrong-" + TOKEN])

        # ---- the worker and the archive logger, when built
        for prog, argv, done in (
                ("hookmq-worker", ["--consumer", CONSUMER],
                 lambda: hqtest.queue_depth("hookmq." + CONSUMER) == 0),
                ("hookmq-archive", ["run"], lambda: hqtest.queue_depth("hookmq.archive") == 0)):
            try:
                exe = hqtest.binary(prog)
            except FileNotFoundError:
                print("%s not built: skipped" % prog, file=sys.stderr)
                continue
            p = hqtest.Proc([exe, "-c", self.config] + argv, name=prog, workdir=self.dir)
            try:
                hqtest.wait_for(done, 60, what="%s to drain its queue" % prog)
                # "started" is logged with SIGHUP already blocked for the signal loop
                hqtest.wait_for(lambda: '"msg":"started"' in p.output(), 30,
                                what="%s to start" % prog)
                p.signal(signal.SIGHUP)
                hqtest.wait_for(lambda: '"msg":"config reloaded"' in p.output(), 15,
                                what="%s to reload" % prog)
            finally:
                p.stop()
            out = p.output()
            lines = parse_lines(out, prog)
            self.assertTrue(lines, "%s wrote no log line" % prog)
            self.assert_clean(out, prog, sigs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
