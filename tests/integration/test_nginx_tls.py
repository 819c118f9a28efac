"""TLS termination: Debian's nginx runs conf/nginx-hookmq.conf (ports, certificate and paths
replaced) with a self-signed certificate in front of a real gateway. Signed webhooks sent over
HTTPS are accepted (202) and reach the queue with the body and the provider's headers
byte-identical; a chunked upload gets through; the body cap of nginx and the gateway agree;
the client address nginx forwards (X-Forwarded-For, believed from trusted_proxies) decides
allow_from; twilio signs the source's public https:// `url` (required)
(sent by hookmq-send over TLS). Skipped when /usr/sbin/nginx is not installed (scripts/dev deps
installs it)."""
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import hqtest  # noqa: E402

NGINX = "/usr/sbin/nginx"
CONF = os.path.join(hqtest.SRC, "conf", "nginx-hookmq.conf")
WATCH = "test.nginx.watch"
GH_SECRET = "tls-github-secret"
HMAC_SECRET = "tls-hmac-secret"
TW_SECRET = "tls-twilio-token"


def replace_once(text, old, new):
    if text.count(old) != 1:
        raise AssertionError("conf/nginx-hookmq.conf: expected exactly one %r" % old)
    return text.replace(old, new)


@unittest.skipUnless(os.path.exists(NGINX),
                     "nginx is not installed (/usr/sbin/nginx): apt-get install nginx-light, "
                     "or scripts/dev deps")
class NginxTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hq-nginx-")
        cls.gw_port = hqtest.free_port()
        cls.tls_port = hqtest.free_port()
        d = cls.dir
        # ---- a self-signed certificate for localhost / 127.0.0.1
        cls.cert = os.path.join(d, "cert.pem")
        cls.key = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert],
                       check=True, capture_output=True, timeout=60)
        # ---- the gateway behind it: trusts the proxy on 127.0.0.1
        cls.config = hqtest.write_config(os.path.join(d, "hookmq.conf"), """
broker = { uris = [ "%s" ]; };
gateway = {
  listen = "127.0.0.1:%d";
  max_body_bytes = 1048576;
  trusted_proxies = [ "127.0.0.1/32" ];
};
sources = (
  { name = "tls-github"; scheme = "github"; secrets = [ "%s" ]; },
  { name = "tls-allow"; scheme = "hmac"; secrets = [ "%s" ]; header = "X-Signature";
    prefix = "sha256="; allow_from = [ "198.51.100.0/24" ]; },
  { name = "tls-twilio"; scheme = "twilio"; secrets = [ "%s" ];
    url = "https://127.0.0.1:%d/webhooks/tls-twilio"; }
);
log = { level = "info"; };
""" % (hqtest.AMQP_URI, cls.gw_port, GH_SECRET, HMAC_SECRET, TW_SECRET, cls.tls_port))
        hqtest.run_dlx_apply(cls.config)
        hqtest.delete_queue(WATCH)
        hqtest.declare_queue(WATCH, ["tls-github.#", "tls-allow.#", "tls-twilio.#"])
        cls.gw = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", cls.config], name="gateway",
                             workdir=d)
        hqtest.wait_http(cls.gw_port, proc=cls.gw)
        # ---- nginx with the shipped server block
        with open(CONF) as f:
            server = f.read()
        server = replace_once(server, "server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % cls.gw_port)
        server = replace_once(server, "listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % cls.tls_port)
        server = replace_once(server, "listen [::]:443 ssl;", "")
        server = replace_once(server, "/etc/ssl/certs/hooks.example.com.pem", cls.cert)
        server = replace_once(server, "/etc/ssl/private/hooks.example.com.key", cls.key)
        server = replace_once(server, "shared:hookmq_ssl:1m", "shared:hookmq_ssl_%d:1m" % cls.tls_port)
        with open(os.path.join(d, "hookmq-site.conf"), "w") as f:
            f.write(server)
        for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, "tmp", t), exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        main = """%sworker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log info;
events { worker_connections 64; }
http {
    access_log %s/access.log;
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;
    include %s/hookmq-site.conf;
}
""" % ((user,) + (d,) * 9)
        cls.nginx_conf = os.path.join(d, "nginx.conf")
        with open(cls.nginx_conf, "w") as f:
            f.write(main)
        t = subprocess.run([NGINX, "-t", "-e", os.path.join(d, "error.log"), "-p", d, "-c",
                            cls.nginx_conf], capture_output=True, text=True, timeout=30)
        if t.returncode != 0:
            cls.gw.stop()
            raise AssertionError("nginx -t: " + t.stderr)
        cls.nginx = subprocess.Popen([NGINX, "-e", os.path.join(d, "error.log"), "-p", d, "-c",
                                      cls.nginx_conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        cls.ctx = ssl.create_default_context(cafile=cls.cert)

        def up():
            try:
                return cls.request("GET", "/nothing")[0] == 404
            except OSError:
                return False
        hqtest.wait_for(up, 20, what="nginx on 127.0.0.1:%d" % cls.tls_port)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "nginx", None):
            cls.nginx.send_signal(signal.SIGQUIT)
            try:
                cls.nginx.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.nginx.kill()
                cls.nginx.wait()
        cls.gw.stop()
        hqtest.delete_queue(WATCH)

    @classmethod
    def request(cls, method, path, body=b"", headers=None, chunked=False):
        c = http.client.HTTPSConnection("127.0.0.1", cls.tls_port, context=cls.ctx, timeout=30)
        try:
            if chunked:
                c.request(method, path, body=iter([body[:1000], body[1000:]]), headers=headers or {},
                          encode_chunked=True)
            else:
                c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def take(self, n):
        hqtest.wait_for(lambda: hqtest.queue_depth(WATCH) >= n, 30, what="%d events" % n)
        msgs = hqtest.get_messages(WATCH)
        self.assertEqual(len(msgs), n)
        return msgs

    def test_signed_webhooks_over_https_arrive_unchanged(self):
        hqtest.purge(WATCH)
        # whitespace, unicode and a trailing newline: any re-encoding would break the MAC
        body = ('{"ref": "refs/heads/main",\n  "message": "caf\u00e9 \u2713",  "n": "%s"}\n'
                % os.urandom(6).hex()).encode()
        hdrs = hqtest.sign_github(GH_SECRET, body, event="push")
        st, _, resp = self.request("POST", "/webhooks/tls-github", body, hdrs)
        self.assertEqual(st, 202, resp)
        self.assertEqual(json.loads(resp)["id"], hdrs["X-GitHub-Delivery"])
        # a chunked upload: nginx reads it whole and forwards it with a length
        body2 = b'{"chunked": true, "pad": "' + b"x" * 5000 + b'"}'
        hdrs2 = hqtest.sign_github(GH_SECRET, body2, event="ping")
        st, _, resp = self.request("POST", "/webhooks/tls-github", body2, hdrs2, chunked=True)
        self.assertEqual(st, 202, resp)
        msgs = {m["properties"]["message_id"]: m for m in self.take(2)}
        m = msgs[hdrs["X-GitHub-Delivery"]]
        self.assertEqual(m["body"], body)
        h = m["properties"]["headers"]
        self.assertEqual(h["http-x-github-event"], "push")
        self.assertEqual(h["http-x-github-delivery"], hdrs["X-GitHub-Delivery"])
        self.assertEqual(h["http-x-hub-signature-256"], hdrs["X-Hub-Signature-256"])
        self.assertEqual(m["properties"]["content_type"], "application/json")
        self.assertEqual(m["routing_key"], "tls-github.push")
        self.assertEqual(msgs[hdrs2["X-GitHub-Delivery"]]["body"], body2)

    def test_body_cap_matches_the_gateway(self):
        hqtest.purge(WATCH)
        prefix, suffix = b'{"pad":"', b'"}'
        body = prefix + b"a" * (1048576 - len(prefix) - len(suffix)) + suffix
        self.assertEqual(len(body), 1048576)
        st, _, resp = self.request("POST", "/webhooks/tls-github", body,
                                   hqtest.sign_github(GH_SECRET, body))
        self.assertEqual(st, 202, resp[:200])
        self.assertEqual(self.take(1)[0]["body"], body)
        big = body + b" "
        st, _, _ = self.request("POST", "/webhooks/tls-github", big, hqtest.sign_github(GH_SECRET, big))
        self.assertEqual(st, 413)

    def test_allow_from_through_the_proxy(self):
        hqtest.purge(WATCH)

        def send(xff):
            body = json.dumps({"type": "order.created", "n": os.urandom(6).hex()}).encode()
            h = hqtest.sign_hmac(HMAC_SECRET, body)
            if xff:
                h["X-Forwarded-For"] = xff
            return self.request("POST", "/webhooks/tls-allow", body, h)[0]

        # nginx appends the peer: "198.51.100.7, 127.0.0.1"; 127.0.0.1 is a trusted proxy
        self.assertEqual(send("198.51.100.7"), 202)
        self.assertEqual(send("203.0.113.9"), 403)
        # no X-Forwarded-For from the client: the chain is the proxy alone, not allowed
        self.assertEqual(send(None), 403)
        # a forged entry on the left does not help: the rightmost untrusted one counts
        self.assertEqual(send("198.51.100.7, 203.0.113.9"), 403)
        self.assertEqual(len(self.take(1)), 1)

    def test_twilio_public_https_url_with_hookmq_send(self):
        hqtest.purge(WATCH)
        url = "https://127.0.0.1:%d/webhooks/tls-twilio" % self.tls_port
        for sample in ("incoming-message", "event-stream"):
            r = subprocess.run([hqtest.binary("hookmq-send"), "-c", self.config, "--source",
                                "tls-twilio", "--sample", sample, "--url", url, "--cacert", self.cert],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stdout.splitlines()[0], "HTTP 202")
        r = subprocess.run([hqtest.binary("hookmq-send"), "-c", self.config, "--source", "tls-twilio",
                            "--sample", "incoming-message", "--url", url, "--cacert", self.cert,
                            "--bad-signature"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(len(self.take(2)), 2)

    def test_only_webhooks_are_exposed(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            self.assertEqual(self.request("GET", path)[0], 404, path)
        self.assertEqual(self.request("GET", "/webhooks/tls-github")[0], 405)


if __name__ == "__main__":
    unittest.main(verbosity=2)
