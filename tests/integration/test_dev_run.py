"""`scripts/dev run` beside another broker on the default port 5672 (issue: it read the first
amqp:// URI of the config file, which in conf/hookmq.conf.example is a default inside a
comment, decided "the configured broker is up", skipped the private node, and then
`hookmq-dlx apply` failed; its cleanup died with `started_broker: unbound variable`).

A plain TCP listener on 127.0.0.1:5672 stands in for the other broker (if something already
listens there, that is the same situation). The config is the example with its own ports and
state directories; the script gets its own run directory and management port and uses this
build (HQ_DEV_BUILD_DIR): it touches no other broker.

1. The config's broker is down: the script starts a private node on the config's port, applies
   the topology, runs gateway, worker and archive logger (the gateway answers), and on SIGTERM
   stops them and the node, exit 0, no shell error.
2. Something that is no broker listens on the config's port: `hookmq-dlx apply` fails, the
   script exits non-zero, and its cleanup runs without a shell error.
Bounded: a few minutes at most (the node start dominates)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import hqtest

EXAMPLE = os.path.join(hqtest.SRC, "conf", "hookmq.conf.example")
DEV = os.path.join(hqtest.SRC, "scripts", "dev")


def listen_5672():
    """A listener on 127.0.0.1:5672, or None when something already listens there."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", 5672))
    except OSError:
        s.close()
        c = socket.create_connection(("127.0.0.1", 5672), timeout=2)  # must accept
        c.close()
        return None
    s.listen(16)
    return s


def http_up(port):
    try:
        return hqtest.http_request(port, "GET", "/healthz", timeout=2)[0] == 200
    except OSError:
        return False


@unittest.skipIf(os.environ.get("HQ_BROKER_VERSION") == "4.0",
                 "scripts/dev run starts a 3.10 node: tested once, under system.dev_run")
class DevRun(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hq-devrun-")
        self.decoy = listen_5672()
        self.amqp = hqtest.free_port()
        self.mgmt = hqtest.free_port()
        self.http = hqtest.free_port()
        with open(EXAMPLE) as f:
            text = f.read()
        subs = [
            (r'(?m)^(\s*uris = \[ "amqp://guest:guest@127\.0\.0\.1:)5699(/%2f" \];)',
             r"\g<1>%d\g<2>" % self.amqp),
            (r'(?m)^(\s*listen = "127\.0\.0\.1:)8080"', r'\g<1>%d"' % self.http),
            (r'"\.run/', '"%s/state/' % self.tmp),
        ]
        for pat, rep in subs:
            text, n = re.subn(pat, rep, text)
            self.assertGreater(n, 0, pat)
        for old in re.findall(r'(?m)^\s*metrics_listen = "127\.0\.0\.1:(\d+)"', text):
            text = text.replace('"127.0.0.1:%s"' % old, '"127.0.0.1:%d"' % hqtest.free_port())
        self.conf = os.path.join(self.tmp, "hookmq.conf")
        hqtest.write_config(self.conf, text)
        os.mkdir(os.path.join(self.tmp, "state"))  # as .run/ is for the example config
        self.rundir = os.path.join(self.tmp, "run")
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # the node, should the script have left it
        env = self.env()
        env.update(HQ_BROKER_DIR=os.path.join(self.rundir, "broker"),
                   HQ_BROKER_PORT=str(self.amqp), HQ_BROKER_MGMT_PORT=str(self.mgmt),
                   HQ_BROKER_VERSION="3.10")
        if os.path.exists(os.path.join(self.rundir, "broker", "rabbitmq.pid")):
            subprocess.run([os.path.join(hqtest.SRC, "scripts", "broker"), "stop"], env=env,
                           capture_output=True, timeout=120)
        if self.decoy:
            self.decoy.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("HQ_BROKER") and k != "HOOKMQ_CONFIG"}
        e.update(HOOKMQ_CONFIG=self.conf, HQ_RUN_DIR=self.rundir, HQ_DEV_BUILD_DIR=hqtest.BUILD,
                 HQ_BROKER_MGMT_PORT=str(self.mgmt), TMPDIR=self.tmp)
        return e

    def start(self):
        self.log_path = os.path.join(self.tmp, "dev.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([DEV, "run"], env=self.env(), cwd=self.tmp, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def assert_clean_shell(self, out):
        self.assertNotIn("unbound variable", out)
        self.assertNotIn("command not found", out)

    def test_private_node_beside_5672(self):
        self.start()
        hqtest.wait_for(lambda: "hookmq is running" in self.output() or self.proc.poll() is not None,
                        timeout=240, what="scripts/dev run to start everything")
        out = self.output()
        self.assertIsNone(self.proc.poll(), out)
        self.assertIn("starting a private RabbitMQ node on 127.0.0.1:%d" % self.amqp, out)
        self.assertNotIn("using the broker configured", out)
        try:
            hqtest.wait_for(lambda: http_up(self.http), timeout=30, what="the gateway")
        except AssertionError:
            print(self.output())
            raise
        self.assertIn("management: http://127.0.0.1:%d/" % self.mgmt, out)
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=150)
        out = self.output()
        self.assertEqual(rc, 0, out)
        self.assert_clean_shell(out)
        self.assertIn("broker: stopped", out)
        self.assertFalse(http_up(self.http), "the gateway still answers")
        s = socket.socket()
        try:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.amqp)), 0,
                                "the private node still listens")
        finally:
            s.close()

    def test_cleanup_after_failed_apply(self):
        # something that is no broker on the config's port: "reachable", apply fails
        fake = socket.socket()
        fake.bind(("127.0.0.1", self.amqp))
        fake.listen(16)
        try:
            self.start()
            rc = self.proc.wait(timeout=120)
        finally:
            fake.close()
        out = self.output()
        self.assertNotEqual(rc, 0, out)
        self.assertIn("using the broker configured", out)
        self.assertIn("stopping", out)  # the cleanup ran
        self.assert_clean_shell(out)
        self.assertNotIn("starting a private RabbitMQ node", out)


if __name__ == "__main__":
    unittest.main()
