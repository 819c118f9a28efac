"""Least privilege on the broker: `hookmq-dlx definitions --users` creates one user per program
(imported through the management API), and each program works under its own user while what
it has no business doing is refused:

- the gateway (configure none, write the events exchange only) starts (its start-up check is a
  passive declare) and accepts events (202, published); the same user cannot publish to
  another exchange or read a queue;
- the worker (when built) consumes its queue and republishes to its retry tier and DLQ through
  the default exchange;
- the operator user runs hookmq-dlx apply, status, list and purge;
- the archive (when built) consumes hookmq.archive.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import hqtest  # noqa: E402

PREFIX = "usr"
CONSUMER = "usrc"
SOURCE = "usrsrc"
SECRET = "usr-github-secret"
WATCH = "test.users.watch"


def uri(user, password):
    return "amqp://%s:%s@127.0.0.1:%d/%%2f" % (user, password, hqtest.AMQP_PORT)


def have(name):
    try:
        hqtest.binary(name)
        return True
    except FileNotFoundError:
        return False


class UsersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = __import__("tempfile").mkdtemp(prefix="hq-users-")
        cls.gw_port = hqtest.free_port()
        cls.archive_dir = os.path.join(cls.dir, "archive")
        cls.body = """
gateway = { listen = "127.0.0.1:%d"; confirm_timeout_ms = 3000; };
sources = ( { name = "%s"; scheme = "github"; secrets = [ "%s" ]; } );
consumers = (
  { name = "%s"; bindings = [ "%s.#" ]; handler = "exec";
    options = { command = "cat > /dev/null; exit 75"; timeout = "10s"; };
    retry = { delays = [ "200ms" ]; max_attempts = 2; }; }
);
archive = { dir = "%s"; };
log = { level = "info"; };
""" % (cls.gw_port, SOURCE, SECRET, CONSUMER, SOURCE, cls.archive_dir)
        cls.admin_conf = cls.conf("admin", hqtest.AMQP_URI)
        cls.users = {}

    @classmethod
    def tearDownClass(cls):
        for u in cls.users:
            hqtest.mgmt("DELETE", "/users/" + hqtest.q(u), ok=(200, 204, 404))
        hqtest.delete_queue(WATCH)
        for suffix in ("", ".dlq", ".retry.200ms"):
            hqtest.delete_queue("hookmq." + CONSUMER + suffix)

    @classmethod
    def conf(cls, name, broker_uri):
        return hqtest.write_config(os.path.join(cls.dir, name + ".conf"),
                                   'broker = { uris = [ "%s" ]; };\n' % broker_uri + cls.body)

    def dlx(self, conf, *args, timeout=120):
        return subprocess.run([hqtest.binary("hookmq-dlx")] + list(args) + ["-c", conf],
                              capture_output=True, text=True, timeout=timeout)

    def import_users(self, password_file=None):
        args = ["definitions", "--users"]
        if password_file:
            args += ["--password-file", password_file]
        r = self.dlx(self.admin_conf, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        hqtest.mgmt("POST", "/definitions", doc)
        for u in doc["users"]:
            type(self).users[u["name"]] = True
        return doc, r.stderr

    def test_users_and_programs(self):
        # 1. the document: one user per program, the narrowest permissions
        doc, err = self.import_users()
        self.assertIn("rabbitmqctl change_password", err)
        perms = {p["user"]: p for p in doc["permissions"]}
        self.assertEqual(set(perms), {"hookmq-gateway", "hookmq-worker-" + CONSUMER,
                                      "hookmq-archive", "hookmq-replay", "hookmq-dlx"})
        gw = perms["hookmq-gateway"]
        self.assertEqual((gw["configure"], gw["write"], gw["read"]), ("^$", r"^hookmq\.events$", "^$"))
        wk = perms["hookmq-worker-" + CONSUMER]
        self.assertEqual(wk["read"], r"^hookmq\.usrc$")
        self.assertEqual(wk["configure"], "^$")
        self.assertEqual(perms["hookmq-archive"]["read"], r"^hookmq\.archive$")
        on_broker = hqtest.mgmt("GET", "/permissions/%2f/hookmq-gateway")
        self.assertEqual(on_broker["write"], r"^hookmq\.events$")

        # passwords from a file (re-import sets them)
        pwf = os.path.join(self.dir, "passwords")
        pw = {u: "pw-" + u for u in perms}
        with open(pwf, "w") as f:
            f.write("# user:password\n")
            for u, p in pw.items():
                f.write("%s:%s\n" % (u, p))
        doc, err = self.import_users(pwf)
        self.assertNotIn("change_password", err)
        self.assertTrue(all("password" in u for u in doc["users"]))
        bad = os.path.join(self.dir, "bad-passwords")
        with open(bad, "w") as f:
            f.write("no colon here\n")
        r = self.dlx(self.admin_conf, "definitions", "--users", "--password-file", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad-passwords:1:", r.stderr)
        r = self.dlx(self.admin_conf, "apply", "--users")
        self.assertEqual(r.returncode, 2)

        # 2. the operator creates the topology with its own user
        op = self.conf("dlx", uri("hookmq-dlx", pw["hookmq-dlx"]))
        r = self.dlx(op, "apply")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        hqtest.delete_queue(WATCH)
        hqtest.declare_queue(WATCH, [SOURCE + ".#"])
        hqtest.purge("hookmq.archive")  # only this test's events, for the archive part

        # 3. the gateway under its user: passive check passes, events are accepted
        gconf = self.conf("gateway", uri("hookmq-gateway", pw["hookmq-gateway"]))
        gw_proc = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", gconf], name="gateway",
                              workdir=self.dir)
        try:
            hqtest.wait_http(self.gw_port, proc=gw_proc)
            for _ in range(2):
                body = json.dumps({"ref": "refs/heads/main", "n": os.urandom(8).hex()}).encode()
                st, _, resp = hqtest.http_request(self.gw_port, "POST", "/webhooks/" + SOURCE, body,
                                                  hqtest.sign_github(SECRET, body))
                self.assertEqual(st, 202, resp)
            hqtest.wait_for(lambda: hqtest.queue_depth(WATCH) >= 2, 30, what="2 events")
        finally:
            self.assertEqual(gw_proc.stop(), 0, gw_proc.output())
        self.assertNotIn("ACCESS_REFUSED", gw_proc.output())

        # the gateway's user cannot publish anywhere else, nor read a queue
        self.assertEqual(self.pubcheck("hookmq-gateway", pw, "hookmq.events"), 1)
        self.assertEqual(self.pubcheck("hookmq-gateway", pw, "hookmq.lifecycle"), 0)
        self.assertEqual(self.pubcheck("hookmq-gateway", pw, "amq.topic"), 0)
        # the default exchange is "amq.default" for permissions: the worker's, not the gateway's
        self.assertEqual(self.pubcheck("hookmq-gateway", pw, ""), 0)
        self.assertEqual(self.pubcheck("hookmq-worker-" + CONSUMER, pw, ""), 1)
        r = self.dlx(self.conf("gw-as-dlx", uri("hookmq-gateway", pw["hookmq-gateway"])),
                     "list", CONSUMER)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

        # 4. the worker under its user: retry tier and DLQ through the default exchange
        dlq = "hookmq.%s.dlq" % CONSUMER
        if have("hookmq-worker"):
            wconf = self.conf("worker", uri("hookmq-worker-" + CONSUMER, pw["hookmq-worker-" + CONSUMER]))
            wk = hqtest.Proc([hqtest.binary("hookmq-worker"), "-c", wconf, "--consumer", CONSUMER],
                             name="worker", workdir=self.dir)
            try:
                hqtest.wait_for(lambda: hqtest.queue_depth(dlq) >= 2, 60, what="2 events in " + dlq)
                self.assertTrue(wk.alive(), wk.output())
            finally:
                wk.stop()
            self.assertNotIn("ACCESS_REFUSED", wk.output())
            expect_dlq = 2
        else:
            print("hookmq-worker not built: worker part skipped", file=sys.stderr)
            expect_dlq = 0

        # 5. the operator's day: status, list, purge
        r = self.dlx(op, "status")
        self.assertIn(r.returncode, (0,), r.stdout + r.stderr)
        self.assertIn(dlq, r.stdout)
        r = self.dlx(op, "list", CONSUMER, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len([ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")]),
                         expect_dlq, r.stdout)
        r = self.dlx(op, "purge", CONSUMER, "--yes")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # 6. the archive under its user
        if have("hookmq-archive"):
            aconf = self.conf("archive", uri("hookmq-archive", pw["hookmq-archive"]))
            hqtest.wait_for(lambda: hqtest.queue_depth("hookmq.archive") > 0, 20,
                            what="events in hookmq.archive")
            ar = hqtest.Proc([hqtest.binary("hookmq-archive"), "run", "-c", aconf], name="archive",
                             workdir=self.dir)
            try:
                hqtest.wait_for(lambda: hqtest.queue_depth("hookmq.archive") == 0, 60,
                                what="hookmq.archive drained")
                self.assertTrue(ar.alive(), ar.output())
            finally:
                ar.stop()
            self.assertNotIn("ACCESS_REFUSED", ar.output())

    def pubcheck(self, user, pw, exchange):
        """Messages the broker confirmed when user publishes one to exchange."""
        p = subprocess.run([hqtest.binary("hq_pubcheck"), "--uri", uri(user, pw[user]),
                            "--exchange", exchange, "--publishers", "1"],
                           input="wait-up 10000\npublish 1 1 5000\nquit\n", capture_output=True,
                           text=True, timeout=60)
        lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
        self.assertTrue(lines and lines[0]["ok"], "cannot connect as %s: %s" % (user, p.stdout + p.stderr))
        return lines[1]["ok"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
