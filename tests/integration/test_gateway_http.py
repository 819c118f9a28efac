"""Every row of docs/interface.md's HTTP table, in check order, plus health, readiness, metrics,
replay cache, handshakes, unrouted events and --check."""
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS, messages_through_marker

P = "ht%d" % random.randint(1000, 9999)
QUEUE = "test.http.%s" % P
GH = SECRETS["github"]

SOURCES = """
  { name = "%(p)s-gh"; scheme = "github"; secrets = [ "%(gh)s" ]; },
  { name = "%(p)s-allow"; scheme = "github"; secrets = [ "%(gh)s" ]; allow_from = [ "10.9.8.0/24" ]; },
  { name = "%(p)s-local"; scheme = "github"; secrets = [ "%(gh)s" ]; allow_from = [ "127.0.0.1/32" ]; },
  { name = "%(p)s-stripe"; scheme = "stripe"; secrets = [ "%(st)s" ]; },
  { name = "%(p)s-slack"; scheme = "slack"; secrets = [ "%(sl)s" ]; },
  { name = "%(p)s-zoom"; scheme = "zoom"; secrets = [ "%(zm)s" ]; },
  { name = "%(p)s-tw"; scheme = "twilio"; secrets = [ "twtok" ];
    url = "https://hooks.example.com/webhooks/%(p)s-tw"; },
  { name = "%(p)s-tok"; scheme = "token"; secrets = [ "tok-1" ]; },
  { name = "%(p)s-sel"; scheme = "hmac"; secrets = [ "k" ]; header = "X-Sig"; prefix = "";
    event_type = "json:/kind"; event_id = "header:X-Event-Id"; }
""" % {"p": P, "gh": GH, "st": SECRETS["stripe"], "sl": SECRETS["slack"], "zm": SECRETS["zoom"]}


def gh_body(n=None):
    return json.dumps({"n": n or time.time_ns()}).encode()


class HttpTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(SOURCES, gateway_extra="max_body_bytes = 4096;".replace(
            "max_body_bytes = 4096;", ""))
        # a small body cap for the 413 rows
        cls.gw_cfg_text = open(cls.gw.config).read().replace("max_body_bytes = 1048576;",
                                                              "max_body_bytes = 4096;")
        hqtest.write_config(cls.gw.config, cls.gw_cfg_text)
        cls.gw.apply()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s-gh.#" % P, "%s-stripe.#" % P,
                                     "%s-sel.#" % P, "%s-local.#" % P, "%s-slack.#" % P,
                                     "%s-zoom.#" % P])
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        hqtest.delete_queue(QUEUE)
        assert rc == 0, "gateway exit code %r" % rc

    def setUp(self):
        hqtest.purge(QUEUE)

    def post_gh(self, src="gh", body=None, extra=None):
        body = body or gh_body()
        h = hqtest.sign_github(GH, body)
        h.update(extra or {})
        return self.gw.post("%s-%s" % (P, src), body, h)

    def assertError(self, resp, status, error=None):
        st, h, b = resp
        self.assertEqual(st, status, b)
        if error:
            self.assertEqual(json.loads(b)["error"], error)
        return json.loads(b) if b else None

    def test_405_method(self):
        st, h, b = hqtest.http_request(self.gw.port, "GET", "/webhooks/%s-gh" % P)
        self.assertEqual(st, 405)
        self.assertEqual(h.get("allow"), "POST")
        # method is checked before the source
        st, _, _ = hqtest.http_request(self.gw.port, "PUT", "/webhooks/nope", b"x")
        self.assertEqual(st, 405)

    def test_404_source(self):
        for path in ("/webhooks/nope", "/webhooks/", "/webhooks/%s-gh/extra" % P,
                     "/webhooks/..%2f..%2fetc", "/webhooks/" + "a" * 1000, "/other"):
            with self.subTest(path=path):
                st, _, _ = hqtest.http_request(self.gw.port, "POST", path, b"{}",
                                               {"Content-Type": "application/json"})
                self.assertEqual(st, 404)

    def test_403_allow_from(self):
        self.assertError(self.post_gh("allow"), 403, "forbidden")
        self.assertEqual(self.post_gh("local")[0], 202)
        # X-Forwarded-For from an untrusted peer is ignored
        self.assertError(self.post_gh("allow", extra={"X-Forwarded-For": "10.9.8.7"}), 403)

    def test_403_trusted_proxy(self):
        # 127.0.0.2 is a trusted proxy in the fixture config: its X-Forwarded-For counts
        body = gh_body()
        h = hqtest.sign_github(GH, body)
        h["X-Forwarded-For"] = "10.9.8.7"
        s = socket.create_connection(("127.0.0.1", self.gw.port), source_address=("127.0.0.2", 0))
        s.close()
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, source_address=("127.0.0.2", 0))
        c.request("POST", "/webhooks/%s-allow" % P, body, h)
        self.assertEqual(c.getresponse().status, 202)
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", self.gw.port, source_address=("127.0.0.2", 0))
        h["X-Forwarded-For"] = "192.0.2.1"
        c.request("POST", "/webhooks/%s-allow" % P, body, h)
        self.assertEqual(c.getresponse().status, 403)
        c.close()

    def raw(self, data, read=65536):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        try:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(read)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if cl and len(rest) >= int(cl[0].split(b":")[1]):
                        break
            return int(out.split(b" ")[1]), out
        finally:
            s.close()

    def test_411_length_required(self):
        st, out = self.raw(b"POST /webhooks/%s-gh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % P.encode())
        self.assertEqual(st, 411, out)

    def test_413_too_large(self):
        big = b"{\"a\":\"" + b"x" * 5000 + b"\"}"
        self.assertError(self.post_gh(body=big), 413, "payload_too_large")
        # chunked beyond the cap
        req = (b"POST /webhooks/%s-gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: c1\r\n"
               b"X-Hub-Signature-256: sha256=00\r\n\r\n" % P.encode())
        for _ in range(5):
            req += b"400\r\n" + b"y" * 1024 + b"\r\n"
        req += b"0\r\n\r\n"
        st, out = self.raw(req)
        self.assertEqual(st, 413, out)

    def test_chunked_within_cap_is_accepted(self):
        body = gh_body()
        h = hqtest.sign_github(GH, body, "push", "chunked-%d" % time.time_ns())
        req = b"POST /webhooks/%s-gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n" % P.encode()
        for k, v in h.items():
            req += ("%s: %s\r\n" % (k, v)).encode()
        req += b"\r\n"
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            req += b"%x\r\n" % len(part) + part + b"\r\n"
        req += b"0\r\n\r\n"
        st, out = self.raw(req)
        self.assertEqual(st, 202, out)
        msgs = hqtest.wait_for(lambda: hqtest.get_messages(QUEUE), 10, what="message")
        self.assertEqual(msgs[0]["body"], body)

    def test_401_reasons(self):
        body = gh_body()
        cases = [
            ({}, "missing_signature"),
            ({"X-Hub-Signature-256": "sha256=zz"}, None),
            ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "bad_signature"),
            ({"X-Hub-Signature-256": "sha256=" + hmac.new(GH.encode(), body, hashlib.sha256).hexdigest().upper()}, None),
        ]
        for hdr, reason in cases:
            with self.subTest(hdr=hdr):
                h = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x1", "Content-Type": "application/json"}
                h.update(hdr)
                r = self.assertError(self.gw.post("%s-gh" % P, body, h), 401, "unauthorized")
                if reason:
                    self.assertEqual(r["reason"], reason)
        # stale stripe timestamp
        sb = json.dumps({"id": "evt_stale", "type": "x"}).encode()
        r = self.assertError(self.gw.post("%s-stripe" % P, sb,
                                          hqtest.sign_stripe(SECRETS["stripe"], sb, int(time.time()) - 301)), 401)
        self.assertEqual(r["reason"], "stale_timestamp")
        m = self.gw.metrics()
        self.assertIn('hookmq_gateway_verification_failures_total{source="%s-stripe",reason="stale_timestamp"} 1' % P, m)

    def test_replay_cache(self):
        body = gh_body()
        h = hqtest.sign_github(GH, body, "push", "rp-%d" % time.time_ns())
        st1, _, b1 = self.gw.post("%s-gh" % P, body, h)
        st2, _, b2 = self.gw.post("%s-gh" % P, body, h)
        self.assertEqual((st1, st2), (202, 202))
        self.assertEqual(json.loads(b1)["id"], json.loads(b2)["id"])
        # one copy, then the marker: the second request published nothing
        got, did = messages_through_marker(self.gw, "%s-gh" % P, GH, QUEUE)
        self.assertEqual(got, [json.loads(b1)["id"], did])
        self.assertRegex(self.gw.metrics(), r"hookmq_gateway_replay_cache_hits_total [1-9]")

    def test_slack_url_verification(self):
        body = json.dumps({"token": "t", "challenge": "ch4ll3nge", "type": "url_verification"}).encode()
        st, h, b = self.gw.post("%s-slack" % P, body, hqtest.sign_slack(SECRETS["slack"], body))
        self.assertEqual(st, 200, b)
        self.assertIn(b"ch4ll3nge", b)
        # unsigned handshake is refused
        st, _, _ = self.gw.post("%s-slack" % P, body, {"Content-Type": "application/json"})
        self.assertEqual(st, 401)
        # nothing ahead of the marker: neither request published anything
        got, did = messages_through_marker(self.gw, "%s-gh" % P, GH, QUEUE)
        self.assertEqual(got, [did])

    def test_zoom_url_validation(self):
        body = json.dumps({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}).encode()
        st, h, b = self.gw.post("%s-zoom" % P, body, hqtest.sign_zoom(SECRETS["zoom"], body))
        self.assertEqual(st, 200, b)
        r = json.loads(b)
        self.assertEqual(r["plainToken"], "qgg8vlvZRS6UYooatFL8Aw")
        self.assertEqual(r["encryptedToken"], hmac.new(SECRETS["zoom"].encode(), b"qgg8vlvZRS6UYooatFL8Aw",
                                                       hashlib.sha256).hexdigest())

    def test_400_missing_type_or_id(self):
        sb = json.dumps({"object": "event", "id": "evt_1"}).encode()  # no type
        r = self.assertError(self.gw.post("%s-stripe" % P, sb, hqtest.sign_stripe(SECRETS["stripe"], sb)), 400)
        self.assertEqual(r["reason"], "missing_type")
        sb = json.dumps({"type": "x.y"}).encode()  # no id
        r = self.assertError(self.gw.post("%s-stripe" % P, sb, hqtest.sign_stripe(SECRETS["stripe"], sb)), 400)
        self.assertEqual(r["reason"], "missing_id")
        # selectors: type from the body, id from a header
        body = json.dumps({"kind": "Order Paid/EU"}).encode()
        h = {"X-Sig": hmac.new(b"k", body, hashlib.sha256).hexdigest(), "Content-Type": "application/json"}
        self.assertEqual(self.gw.post("%s-sel" % P, body, h)[0], 400)
        h["X-Event-Id"] = "ord-77"
        st, _, b = self.gw.post("%s-sel" % P, body, h)
        self.assertEqual(st, 202, b)
        self.assertEqual(json.loads(b)["id"], "ord-77")
        msgs = hqtest.wait_for(lambda: hqtest.get_messages(QUEUE), 10, what="message")
        self.assertEqual(msgs[0]["routing_key"], "%s-sel.order_paid.eu" % P)
        self.assertEqual(msgs[0]["properties"]["headers"]["hookmq-event-type"], "Order Paid/EU")

    def test_unrouted_events_are_kept(self):
        # hookmq.archive is bound with "#": take that binding (and our queue) away for a
        # moment so the event matches nothing, then let `hookmq-dlx apply` restore it.
        before = hqtest.queue_info("hookmq.unrouted").get("messages", 0)
        hqtest.mgmt("DELETE", "/bindings/%2f/e/hookmq.events/q/hookmq.archive/%23")
        hqtest.delete_queue(QUEUE)
        try:
            body = gh_body()
            h = hqtest.sign_github(GH, body, "unrouted_probe", "un-%d" % time.time_ns())
            st, _, b = self.gw.post("%s-gh" % P, body, h)
            self.assertEqual(st, 202, b)
            hqtest.wait_for(lambda: hqtest.queue_info("hookmq.unrouted").get("messages", 0) > before,
                            15, what="event in hookmq.unrouted")
        finally:
            self.gw.apply()
            hqtest.declare_queue(QUEUE, ["%s-gh.#" % P, "%s-stripe.#" % P,
                                         "%s-sel.#" % P, "%s-local.#" % P, "%s-slack.#" % P,
                                         "%s-zoom.#" % P])

    def test_twilio_json_with_configured_url(self):
        # the configured public URL plus the request's own query (bodySHA256) is what is signed
        body = json.dumps({"EventType": "x", "n": time.time_ns()}).encode()
        sha = hashlib.sha256(body).hexdigest()
        signed_url = "https://hooks.example.com/webhooks/%s-tw?bodySHA256=%s" % (P, sha)
        h = {"X-Twilio-Signature": hqtest.hmac_b64("twtok", signed_url.encode(), hashlib.sha1),
             "Content-Type": "application/json"}
        st, _, b = self.gw.post("%s-tw" % P, body, h, path="/webhooks/%s-tw?bodySHA256=%s" % (P, sha))
        self.assertEqual(st, 202, b)
        tampered = body + b" "
        st, _, b = self.gw.post("%s-tw" % P, tampered, h, path="/webhooks/%s-tw?bodySHA256=%s" % (P, sha))
        self.assertEqual(st, 401, b)

    def test_token_scheme_bearer_is_case_insensitive(self):
        for auth, want in (("Bearer tok-1", 202), ("bearer tok-1", 202), ("Bearer tok-2", 401),
                           ("tok-1", 401)):
            with self.subTest(auth=auth):
                body = json.dumps({"n": time.time_ns()}).encode()
                st, _, b = self.gw.post("%s-tok" % P, body, {"Authorization": auth,
                                                             "Content-Type": "application/json"})
                self.assertEqual(st, want, b)

    def test_health_ready_metrics(self):
        self.assertEqual(hqtest.http_request(self.gw.port, "GET", "/healthz")[0], 200)
        self.assertEqual(hqtest.http_request(self.gw.port, "GET", "/readyz")[0], 200)
        self.post_gh()
        m = self.gw.metrics()
        for name in ("hookmq_gateway_requests_total{source=\"%s-gh\",status=\"202\"}" % P,
                     "hookmq_gateway_confirm_latency_seconds_bucket",
                     "hookmq_gateway_in_flight", "hookmq_gateway_spool_events",
                     "hookmq_gateway_spool_bytes", "hookmq_gateway_broker_connected 1",
                     "hookmq_gateway_replay_cache_hits_total"):
            self.assertIn(name, m)
        for s in SECRETS.values():
            self.assertNotIn(s, m)

    def test_request_log_has_no_secrets(self):
        self.post_gh()
        out = self.gw.proc.output()
        self.assertIn("source=%s-gh" % P, out)
        self.assertIn("status=202", out)
        self.assertNotIn(GH, out)
        self.assertNotIn("sha256=", out)


class Check(unittest.TestCase):
    def test_check_ok_and_error_with_file_line(self):
        gw = Gateway('  { name = "ok"; scheme = "none"; }')
        r = subprocess.run([hqtest.binary("hookmq-gateway"), "--check", "-c", gw.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        bad = os.path.join(gw.workdir, "bad.conf")
        with open(bad, "w") as f:
            f.write('gateway = {\n  max_in_flight = "lots";\n};\n')
        r = subprocess.run([hqtest.binary("hookmq-gateway"), "--check", "-c", bad],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:2:", r.stderr)

    def test_tls_listener_refused(self):
        gw = Gateway('  { name = "ok"; scheme = "none"; }')
        text = open(gw.config).read().replace('listen = "127.0.0.1:%d"' % gw.port,
                                              'listen = "127.0.0.1:%ds"' % gw.port)
        hqtest.write_config(gw.config, text)
        r = subprocess.run([hqtest.binary("hookmq-gateway"), "-c", gw.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("TLS", r.stderr)

    def test_missing_exchange_exits_3(self):
        gw = Gateway('  { name = "ok"; scheme = "none"; }')
        text = open(gw.config).read().replace('exchange = "hookmq.events"', 'exchange = "hookmq.nope"')
        hqtest.write_config(gw.config, text)
        r = subprocess.run([hqtest.binary("hookmq-gateway"), "-c", gw.config],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("hookmq-dlx apply", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
