"""amqps:// to the broker with CA and peer verification: a RabbitMQ node of its own with a TLS
listener (certificates made here with openssl), `hookmq-dlx apply` and a gateway over TLS (a
signed webhook gives 202 and lands in a queue); a gateway that trusts another CA cannot
connect (503, never a 4xx); one that connects by IP fails the hostname check."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import hqtest
from gwfixture import Gateway

# a node of its own on fixed ports; the 3.10 and 4.0 runs of this file may run at the same time
# (scripts/dev test runs both brokers' suites side by side), so each version has its own
AMQP, TLS = (5740, 5741) if hqtest.BROKER_MAJOR < 4 else (5742, 5743)
MGMT = AMQP + 10000


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name,
            "-keyout", name + ".key", "-out", name + ".pem", cwd=d)


class Amqps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="hq-tls-")
        make_ca(cls.d, "ca")
        make_ca(cls.d, "other-ca")
        with open(os.path.join(cls.d, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
                "server.key", "-out", "server.csr", cwd=cls.d)
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
                cwd=cls.d)
        os.chmod(os.path.join(cls.d, "server.key"), 0o644)  # the broker runs as this user
        cls.env = dict(os.environ, HQ_BROKER_DIR=os.path.join(cls.d, "broker"),
                       HQ_BROKER_PORT=str(AMQP), HQ_BROKER_MGMT_PORT=str(MGMT),
                       HQ_BROKER_TLS_PORT=str(TLS), HQ_BROKER_TLS_DIR=cls.d)
        subprocess.run([os.path.join(hqtest.SRC, "scripts", "broker"), "start"], env=cls.env,
                       check=True, capture_output=True, timeout=240)
        hqtest.MGMT_PORT = MGMT  # this file talks to its own node

    @classmethod
    def tearDownClass(cls):
        subprocess.run([os.path.join(hqtest.SRC, "scripts", "broker"), "stop"], env=cls.env,
                       capture_output=True, timeout=120)
        shutil.rmtree(cls.d, ignore_errors=True)

    def gateway(self, uri, ca, spool=False, confirm_timeout_ms=1000):
        gw = Gateway('  { name = "tls"; scheme = "github"; secrets = [ "s" ]; }', spool=spool,
                     uris=[uri], confirm_timeout_ms=confirm_timeout_ms)
        with open(gw.config) as f:
            text = f.read()
        text = text.replace(
            "heartbeat_s = 5;", 'heartbeat_s = 5;\n  tls = { ca_file = "%s"; verify_peer = true; };' % ca)
        hqtest.write_config(gw.config, text)
        return gw

    def post(self, gw, n):
        body = json.dumps({"n": n}).encode()
        return gw.post("tls", body, hqtest.sign_github("s", body, "push", "tls-%d" % n))

    def test_publish_over_tls_with_verified_peer(self):
        # the first publish into a new quorum queue can take over a second on a busy machine
        gw = self.gateway("amqps://guest:guest@localhost:%d/%%2f" % TLS, os.path.join(self.d, "ca.pem"),
                          confirm_timeout_ms=10000)
        gw.apply()  # hookmq-dlx over TLS too
        hqtest.declare_queue("test.tls", ["tls.#"])
        gw.start()
        try:
            # a TLS handshake with a busy node can outlast the confirm timeout: publish once
            # the publisher is connected (the path under test), not while it still connects
            hqtest.wait_for(lambda: "publisher connected" in gw.proc.output(), 60,
                            what="a publisher connected over TLS")
            st, _, b = self.post(gw, 1)
            self.assertEqual(st, 202, b)
            msgs = hqtest.wait_for(lambda: hqtest.get_messages("test.tls"), 15, what="message")
            self.assertEqual(msgs[0]["properties"]["message_id"], "tls-1")
            # the management API lists connections a few seconds late
            hqtest.wait_for(lambda: any(c.get("ssl") and "hookmq-gateway" in str(
                c.get("client_properties", {}).get("connection_name", ""))
                for c in hqtest.mgmt("GET", "/connections")), 20,
                what="the gateway's TLS connection in the management API")
        finally:
            self.assertEqual(gw.stop(), 0)
            hqtest.delete_queue("test.tls")

    def test_untrusted_ca_refused(self):
        gw = self.gateway("amqps://guest:guest@localhost:%d/%%2f" % TLS,
                          os.path.join(self.d, "other-ca.pem"))
        gw.start()
        try:
            hqtest.wait_for(lambda: "publisher cannot connect" in gw.proc.output(), 20,
                            what="the TLS handshake refused")
            st, h, _ = self.post(gw, 2)
            self.assertEqual(st, 503)
            self.assertIn("retry-after", h)
            self.assertEqual(hqtest.http_request(gw.port, "GET", "/readyz")[0], 503)
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_hostname_mismatch_refused(self):
        # the certificate names localhost, not 127.0.0.1
        gw = self.gateway("amqps://guest:guest@127.0.0.1:%d/%%2f" % TLS, os.path.join(self.d, "ca.pem"))
        gw.start()
        try:
            hqtest.wait_for(lambda: "publisher cannot connect" in gw.proc.output(), 20,
                            what="the TLS handshake refused")
            st, _, _ = self.post(gw, 3)
            self.assertEqual(st, 503)
        finally:
            self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
