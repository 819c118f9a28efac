"""Secrets never leak: a gateway with every scheme, a worker and the archive logger (all at log
level debug) get valid and invalid requests for every scheme; then every log, the /metrics
output, every 4xx error body, every message's AMQP headers and properties (a bound queue) and
the archive (hookmq-archive query) are searched for each secret, in plain, base64, base64url
and hex forms. None may appear. Loopback only, bounded (about 30 s)."""
import base64
import json
import os
import subprocess
import tempfile
import time
import unittest

import hqtest
import test_gateway_schemes as gs
from gwfixture import SECRETS, sources_block

P = gs.P  # gs.signed() builds the twilio/square URLs from this prefix
QUEUE = "test.secrets.%s" % P
SCHEMES = list(SECRETS) + ["none"]


def forms(secret):
    """Every way a secret could show up in text."""
    raw = secret.encode()
    out = {"plain": raw, "base64": base64.b64encode(raw).rstrip(b"="),
           "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
           "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode()}
    if secret.startswith("whsec_"):  # standard webhooks: the key is the base64 after whsec_
        out["key-b64"] = secret[6:].rstrip("=").encode()
        try:
            out["key-hex"] = base64.b64decode(secret[6:], validate=True).hex().encode()
        except ValueError:
            pass
    if ":" in secret:  # basic: user:password, also the password alone
        out["password"] = secret.split(":", 1)[1].encode()
    return out


class Secrets(unittest.TestCase):
    def test_no_secret_anywhere(self):
        d = tempfile.mkdtemp(prefix="hq-secrets-")
        port, mport = hqtest.free_port(), hqtest.free_port()
        wport, aport = hqtest.free_port(), hqtest.free_port()
        adir = os.path.join(d, "archive")
        consumer = P + "-w"
        cfg = hqtest.write_config(os.path.join(d, "hookmq.conf"), """
broker = { uris = [ "%s" ]; exchange = "hookmq.events"; heartbeat_s = 5; };
gateway = {
  listen = "127.0.0.1:%d";
  metrics_listen = "127.0.0.1:%d";
  spool_dir = "%s";
  trusted_proxies = [ "127.0.0.2/32" ];
};
sources = (
%s
);
consumers = (
  { name = "%s"; bindings = [ %s ]; handler = "log"; metrics_listen = "127.0.0.1:%d";
    retry = { delays = [ "200ms" ]; max_attempts = 2; }; }
);
archive = { dir = "%s"; metrics_listen = "127.0.0.1:%d"; batch_ms = 20; };
log = { format = "text"; level = "debug"; };
""" % (hqtest.AMQP_URI, port, mport, os.path.join(d, "spool"), sources_block(P), consumer,
            ", ".join('"%s-%s.#"' % (P, s) for s in SCHEMES), wport, adir, aport))
        hqtest.run_dlx_apply(cfg)
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s-%s.#" % (P, s) for s in SCHEMES])
        gw = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", cfg], name="gateway", workdir=d)
        wk = hqtest.Proc([hqtest.binary("hookmq-worker"), "-c", cfg, "--consumer", consumer],
                         name="worker", workdir=d)
        ar = hqtest.Proc([hqtest.binary("hookmq-archive"), "run", "-c", cfg], name="archive",
                         workdir=d)
        procs = [gw, wk, ar]
        try:
            hqtest.wait_http(port, proc=gw)
            bodies_4xx = []
            accepted = {}
            for scheme in SCHEMES:
                src = "%s-%s" % (P, scheme)
                # valid
                body, headers, _, _ = gs.signed(scheme, port)
                st, _, rb = hqtest.http_request(port, "POST", "/webhooks/" + src, body, headers)
                self.assertEqual(st, 202, (scheme, rb))
                accepted[src] = json.loads(rb)["id"]
                # the same again (replay cache) and a wrong secret, a stale/garbled one
                st, _, rb = hqtest.http_request(port, "POST", "/webhooks/" + src, body, headers)
                self.assertEqual(st, 202, (scheme, rb))
                if scheme == "none":  # no signature, no replay cache: published again
                    accepted[src + "/again"] = json.loads(rb)["id"]
                    continue
                saved = SECRETS[scheme]
                SECRETS[scheme] = {"standard": "whsec_" + base64.b64encode(b"y" * 24).decode(),
                                   "basic": "user:wrong"}.get(scheme, saved[:-1] + "X")
                try:
                    body, headers, _, _ = gs.signed(scheme, port)
                finally:
                    SECRETS[scheme] = saved
                st, _, rb = hqtest.http_request(port, "POST", "/webhooks/" + src, body, headers)
                self.assertEqual(st, 401, (scheme, rb))
                bodies_4xx.append(rb)
                # the secret itself where the signature goes, and a header-less request
                # (only the credential headers: X-Gitlab-Token = secret is the valid gitlab
                # credential, so that one is a 202)
                h = dict(headers)
                for k in list(h):
                    if any(w in k.lower() for w in ("sig", "token", "authorization", "hmac")):
                        h[k] = saved
                st, _, rb = hqtest.http_request(port, "POST", "/webhooks/" + src, body, h)
                self.assertIn(st, (202, 400, 401), (scheme, rb))
                if st == 202:
                    accepted[src + "/2"] = json.loads(rb)["id"]
                else:
                    bodies_4xx.append(rb)
                st, _, rb = hqtest.http_request(port, "POST", "/webhooks/" + src, b"{}",
                                                {"Content-Type": "application/json",
                                                 "X-Debug": saved})
                self.assertIn(st, (400, 401), (scheme, rb))
                bodies_4xx.append(rb)
            # other 4xx answers
            for path, method in (("/webhooks/nope", "POST"), ("/webhooks/%s-github" % P, "GET")):
                st, _, rb = hqtest.http_request(port, method, path, b"{}",
                                                {"Authorization": "Bearer " + SECRETS["token"]})
                self.assertGreaterEqual(st, 400)
                bodies_4xx.append(rb)

            # AMQP: every published message (properties and headers)
            msgs = hqtest.wait_for(
                lambda: (lambda m: m if len(m) >= len(accepted) else None)(
                    hqtest.get_messages(QUEUE)), 20, what="messages in the bound queue")
            self.assertEqual(len(msgs), len(accepted))
            amqp = json.dumps([{"p": m["properties"], "rk": m["routing_key"]} for m in msgs])
            # the worker handled them, the archive has them
            hqtest.wait_for(lambda: wk.output().count(P + "-") >= len(accepted), 30,
                            what="worker log lines")

            def archived():
                r = subprocess.run([hqtest.binary("hookmq-archive"), "query", "-c", cfg,
                                    "--from", "-1h", "--kind", "all"], capture_output=True,
                                   timeout=60)
                out = r.stdout
                return out if out.count(P.encode() + b"-") >= len(accepted) else None
            archive_out = hqtest.wait_for(archived, 30, interval=0.5, what="archive records")
            metrics = b"".join(hqtest.http_request(p, "GET", "/metrics", timeout=5)[2]
                               for p in (mport, wport, aport))
        finally:
            rcs = [p.stop() if p.alive() else p.p.poll() for p in procs]
            hqtest.delete_queue(QUEUE)
        self.assertEqual(rcs, [0, 0, 0])
        logs = b""
        for p in procs:
            with open(p.log_path, "rb") as f:
                logs += f.read()
        self.assertIn(b" debug ", logs)  # the run really logged at debug level
        # archive files on disk too (segments may be compressed; the query output covers them)
        haystacks = {"logs": logs, "metrics": metrics, "4xx bodies": b"\n".join(bodies_4xx),
                     "amqp": amqp.encode(), "archive": archive_out}
        for name, text in haystacks.items():  # each haystack really holds this run's data
            self.assertIn(b"unauthorized" if name == "4xx bodies" else P.encode(), text, name)
        leaks = []
        for scheme, secret in SECRETS.items():
            for form, needle in forms(secret).items():
                for name, text in haystacks.items():
                    if needle in text:
                        i = text.index(needle)
                        leaks.append("%s (%s) in %s: ...%r..." % (scheme, form, name,
                                                                   text[max(0, i - 80):i + 40]))
        print("\nsearched %s for %d secrets in %d forms: %d leaks"
              % (", ".join("%s %d B" % (k, len(v)) for k, v in haystacks.items()),
                 len(SECRETS), sum(len(forms(s)) for s in SECRETS.values()), len(leaks)))
        self.assertEqual(leaks, [], "\n".join(leaks))


class AllowFrom(unittest.TestCase):
    """allow_from without trusted_proxies (X-Forwarded-For never believed) and with them
    (multi-hop and malformed X-Forwarded-For); test_gateway_http.py covers the basic rows."""

    def post(self, gw, source, xff=None, src_addr="127.0.0.2"):
        import http.client
        body = json.dumps({"n": time.time_ns()}).encode()
        h = hqtest.sign_github(SECRETS["github"], body)
        if xff is not None:
            h["X-Forwarded-For"] = xff
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10,
                                       source_address=(src_addr, 0))
        try:
            c.request("POST", "/webhooks/" + source, body, h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def run_gw(self, trusted):
        from gwfixture import Gateway
        src = ('  { name = "%s-af"; scheme = "github"; secrets = [ "%s" ]; '
               'allow_from = [ "10.9.8.0/24", "127.0.0.3/32" ]; }' % (P, SECRETS["github"]))
        gw = Gateway(src)
        with open(gw.config) as f:
            text = f.read().replace('trusted_proxies = [ "127.0.0.2/32" ];', trusted)
        hqtest.write_config(gw.config, text)
        gw.apply()
        gw.start()
        return gw

    def test_without_trusted_proxies(self):
        gw = self.run_gw("")
        try:
            s = P + "-af"
            self.assertEqual(self.post(gw, s, "10.9.8.7")[0], 403)  # XFF ignored
            self.assertEqual(self.post(gw, s, "127.0.0.3")[0], 403)
            self.assertEqual(self.post(gw, s, None, "127.0.0.3")[0], 202)  # the peer counts
            self.assertEqual(self.post(gw, s, "192.0.2.1", "127.0.0.3")[0], 202)
            self.assertEqual(self.post(gw, s, "garbage,,", "127.0.0.3")[0], 202)
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_with_trusted_proxies(self):
        gw = self.run_gw('trusted_proxies = [ "127.0.0.2/32", "127.0.0.4/32" ];')
        try:
            s = P + "-af"
            self.assertEqual(self.post(gw, s, "10.9.8.7")[0], 202)
            # the client is the rightmost address that is not a trusted proxy
            self.assertEqual(self.post(gw, s, "10.9.8.7, 127.0.0.4")[0], 202)
            self.assertEqual(self.post(gw, s, "10.9.8.7, 192.0.2.1")[0], 403)  # spoofed hop
            self.assertEqual(self.post(gw, s, "192.0.2.1, 10.9.8.7")[0], 202)
            # a trusted proxy without XFF: the proxy itself is the client
            self.assertEqual(self.post(gw, s, None)[0], 403)
            st, body = self.post(gw, s, "not-an-ip")
            self.assertEqual(st, 403, body)
            st, body = self.post(gw, s, "1.2.3.4" + ", 5.6.7.8" * 2000)
            self.assertIn(st, (400, 403), body)
            # an untrusted peer's XFF is ignored even when it names an allowed address
            self.assertEqual(self.post(gw, s, "10.9.8.7", "127.0.0.5")[0], 403)
        finally:
            self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
