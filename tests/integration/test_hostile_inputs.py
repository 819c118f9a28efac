"""Hostile input: each malformed or oversized request gets a 4xx from the contract (or from
CivetWeb before the handler runs) and the gateway never crashes. Loopback only, bounded.
The table of input -> answer is in docs/reliability.md, section "Hostile input"."""
import json
import random
import socket
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "hi%d" % random.randint(1000, 9999)
GH = SECRETS["github"]
ST = SECRETS["stripe"]
SOURCES = """
  { name = "%(p)s-gh"; scheme = "github"; secrets = [ "%(gh)s" ]; },
  { name = "%(p)s-stripe"; scheme = "stripe"; secrets = [ "%(st)s" ]; },
  { name = "%(p)s-sel"; scheme = "hmac"; secrets = [ "k" ]; header = "X-Sig"; prefix = "";
    event_type = "json:/a/b/kind"; event_id = "json:/id"; }
""" % {"p": P, "gh": GH, "st": ST}
CAP = 1048576  # max_body_bytes of the fixture


def raw(port, data, timeout=15, read_all=True):
    """Send raw bytes, return (status or None, full answer bytes). None: closed without an
    HTTP answer (or reset)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        end = time.time() + timeout
        while time.time() < end:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            buf += d
            if not read_all and b"\r\n\r\n" in buf:
                break
            if b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            return int(buf.split(b" ")[1]), buf
    finally:
        s.close()
    if buf.startswith(b"HTTP/1."):
        return int(buf.split(b" ")[1]), buf
    return None, buf


def req(method, path, headers, body=b"", extra_header_lines=()):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Connection: close"]
    lines += ["%s: %s" % kv for kv in headers.items()]
    lines += list(extra_header_lines)
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def nb():
    """A unique small body: the replay cache answers a repeated signature with 202."""
    return json.dumps({"n": time.time_ns()}).encode()


def sel_headers(body):
    return {"X-Sig": hqtest.hmac_hex("k", body), "Content-Type": "application/json"}


class Hostile(unittest.TestCase):
    results = []

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(SOURCES, gateway_extra="request_timeout_ms = 3000;")
        cls.gw.apply()
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        alive = cls.gw.proc.alive()
        rc = cls.gw.stop()
        print("\ninput -> answer")
        for row in cls.results:
            print("  %-60s %s" % row)
        assert alive, "gateway died:\n" + cls.gw.proc.output()[-3000:]
        assert rc == 0, "gateway exit code %r" % rc

    def record(self, what, status, expect):
        self.results.append((what, status))
        if isinstance(expect, int):
            self.assertEqual(status, expect, what)
        else:
            self.assertTrue(status is not None and expect[0] <= status <= expect[1],
                            "%s: %r" % (what, status))

    def tearDown(self):
        # after every case: the process runs and still answers
        self.assertTrue(self.gw.proc.alive(), self.gw.proc.output()[-3000:])
        self.assertEqual(hqtest.http_request(self.gw.port, "GET", "/healthz", timeout=10)[0], 200)

    # ---- headers, request line -------------------------------------------------------------
    def test_oversized_header(self):
        body = b"{}"
        h = hqtest.sign_github(GH, body)
        h["X-Pad"] = "a" * 40000  # > max_request_size 32768
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("header block of 40 KiB (> max_request_size 32 KiB)", st, (400, 431))

    def test_many_headers(self):
        body = nb()
        h = hqtest.sign_github(GH, body)
        extra = ["X-H%d: v" % i for i in range(100)]  # CivetWeb keeps 64
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body, extra))
        self.record("100 header lines (CivetWeb keeps 64)", st, 431)

    def test_long_request_line(self):
        st, _ = raw(self.gw.port, req("POST", "/webhooks/" + "a" * 20480, {}, b"{}"))
        self.record("request line of 20 KiB", st, (400, 431))
        st, _ = raw(self.gw.port, req("POST", "/webhooks/x?" + "q" * 40000, {}, b"{}"))
        self.record("request line of 40 KiB (> max_request_size)", st, (400, 431))

    def test_garbage_request_line(self):
        st, _ = raw(self.gw.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200) +
                    b"\r\n\r\n", timeout=5)
        self.assertTrue(st is None or 400 <= st <= 499)
        self.results.append(("TLS ClientHello / binary garbage", st or "closed, no answer"))
        st, _ = raw(self.gw.port, b"POST /webhooks/%s-gh HTTP/9.9\r\nContent-Length: 0\r\n\r\n"
                    % P.encode(), timeout=5)
        # CivetWeb closes the connection without an answer (None)
        self.assertTrue(st is None or 400 <= st <= 505)
        self.results.append(("HTTP/9.9", st or "closed, no answer"))

    def test_nul_in_header(self):
        body = nb()
        h = hqtest.sign_github(GH, body)
        data = req("POST", "/webhooks/%s-gh" % P, h, body, ["X-GitHub-Hook-ID: a\x00b"])
        st, _ = raw(self.gw.port, data, timeout=5)
        self.record("NUL byte inside a header value", st, (400, 499))

    # ---- body length -------------------------------------------------------------------------
    def test_chunked_beyond_cap(self):
        h = {"Transfer-Encoding": "chunked"}
        h.update(hqtest.sign_github(GH, b"x"))
        chunk = b"a" * 65536
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(CAP // len(chunk) + 2))
        body += b"0\r\n\r\n"
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("chunked body of cap + 128 KiB", st, 413)

    def test_content_length_lies(self):
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P,
                                      {"Content-Length": "99999999999999"}, b""))
        self.record("Content-Length: 99999999999999", st, (400, 413))
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, {"Content-Length": "-5"}, b""))
        self.record("Content-Length: -5", st, (400, 411))
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P,
                                      {"Content-Length": "1x"}, b"a"))
        self.record("Content-Length: 1x", st, (400, 411))
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P,
                                      {"Content-Length": "100"}, b"short"), timeout=20)
        self.record("Content-Length 100, 5 bytes sent, then EOF-less wait", st, 408)

    def test_stalled_body_is_408(self):
        """Headers and part of a signed body, then silence past request_timeout_ms (3 s here):
        408 body_timeout (the client was too slow; not a malformed request) and the
        connection is closed."""
        body = nb()
        h = sel_headers(body)
        h["Content-Length"] = str(len(body))
        t0 = time.monotonic()
        st, ans = raw(self.gw.port, req("POST", "/webhooks/%s-sel" % P, h, body[:len(body) // 2]),
                      timeout=20)
        took = time.monotonic() - t0
        self.record("signed body half sent, then silence", st, 408)
        head, _, rest = ans.partition(b"\r\n\r\n")
        self.assertEqual(json.loads(rest), {"error": "request_timeout", "reason": "body_timeout"})
        self.assertIn(b"connection: close", head.lower())
        self.assertGreaterEqual(took, 2.5)
        self.assertLess(took, 10)

    def test_bad_chunk_encoding(self):
        h = {"Transfer-Encoding": "chunked"}
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, b"zz\r\nabc\r\n0\r\n\r\n"),
                    timeout=20)
        self.record("chunk size 'zz'", st, (400, 400))
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h,
                                      b"ffffffffffffffff\r\nabc"), timeout=20)
        self.record("chunk size 2^64-1", st, (400, 413))

    # ---- JSON ------------------------------------------------------------------------------
    def test_deep_json(self):
        body = b"[" * 10000 + b"]" * 10000
        st, _, rb = self.gw.post(P + "-stripe", body, hqtest.sign_stripe(ST, body))
        self.record("stripe (json:/type): 10000 nested arrays, signed", st, 400)
        body = b'{"a":' * 10000 + b"1" + b"}" * 10000
        st, _, rb = self.gw.post(P + "-sel", body, sel_headers(body))
        self.record("json selector: 10000 nested objects, signed", st, 400)
        body = b"[" * 100000  # unterminated
        st, _, rb = self.gw.post(P + "-sel", body, sel_headers(body))
        self.record("json selector: 100000 '[' unterminated, signed", st, 400)

    def test_huge_json(self):
        big = json.dumps({"data": ["x" * 100] * 9000}).encode()  # ~950 KB, no type
        st, _, _ = self.gw.post(P + "-stripe", big, hqtest.sign_stripe(ST, big))
        self.record("stripe: 950 KB JSON without type, signed", st, 400)
        ok = json.dumps({"type": "big.one", "id": "evt_%d" % time.time_ns(),
                         "data": ["x" * 100] * 9000}).encode()
        st, _, _ = self.gw.post(P + "-stripe", ok, hqtest.sign_stripe(ST, ok))
        self.record("stripe: 950 KB JSON with type/id, signed", st, 202)
        many = b"[" + b"1," * 400000 + b"1]"
        st, _, _ = self.gw.post(P + "-sel", many, sel_headers(many))
        self.record("json selector: 400k-element array, signed", st, 400)
        key = json.dumps({"a": {"b": {"kind": "k" * 300}}, "id": "x"}).encode()
        st, _, _ = self.gw.post(P + "-sel", key, sel_headers(key))
        self.record("json selector: type of 300 bytes (> 255)", st, 400)

    def test_invalid_utf8(self):
        body = b"\xff\xfe\xc3(\xa0\xa1\xed\xa0\x80 not utf-8 \x80"
        st, _, rb = self.gw.post(P + "-gh", body, hqtest.sign_github(GH, body))
        self.record("invalid UTF-8 body, github (header type/id), signed", st, 202)
        body = b'{"type":"\xff\xfe","id":"evt_1"}'
        st, _, rb = self.gw.post(P + "-stripe", body, hqtest.sign_stripe(ST, body))
        self.record("stripe: type with invalid UTF-8, signed", st, 400)

    # ---- signature headers -----------------------------------------------------------------
    def test_duplicate_signature_header(self):
        body = b"{}"
        h = hqtest.sign_github(GH, body)
        sig = h["X-Hub-Signature-256"]
        st, ans = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body,
                                        ["X-Hub-Signature-256: " + sig]))
        self.record("X-Hub-Signature-256 twice (both valid)", st, 401)
        self.assertIn(b"duplicate_header", ans)
        self.assertNotIn(sig.encode(), ans)
        b2 = b'{"type":"a","id":"evt_dup"}'
        h = hqtest.sign_stripe(ST, b2)
        st, ans = raw(self.gw.port, req("POST", "/webhooks/%s-stripe" % P, h, b2,
                                        ["stripe-signature: t=1,v1=00"]))
        self.record("Stripe-Signature twice (different case)", st, 401)
        self.assertIn(b"duplicate_header", ans)

    def test_signature_garbage(self):
        body = b"{}"
        for v in ("sha256=" + "zz" * 32, "sha256=" + "a" * 20000, "sha256=", "\xff" * 10):
            h = hqtest.sign_github(GH, body)
            h["X-Hub-Signature-256"] = v
            st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
            self.record("X-Hub-Signature-256 = %r..." % v[:12], st, 401)

    # ---- values that would break AMQP --------------------------------------------------------
    def test_amqp_limits(self):
        body = nb()
        h = hqtest.sign_github(GH, body)
        h["X-GitHub-Hook-ID"] = "h" * 10240
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("kept header X-GitHub-Hook-ID of 10 KiB (cut to 8 KiB)", st, 202)
        body = nb()
        h = hqtest.sign_github(GH, body, delivery="d" * 10240)
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("X-GitHub-Delivery (event id) of 10 KiB", st, 400)
        body = nb()
        h = hqtest.sign_github(GH, body, delivery="d" * 300)
        st, ans = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("event id of 300 bytes (> 255 shortstr)", st, 400)
        body = nb()
        h = hqtest.sign_github(GH, body, delivery="d" * 255)
        st, ans = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("event id of 255 bytes", st, 202)
        body = nb()
        h = hqtest.sign_github(GH, body, event="e" * 300)
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("event type of 300 bytes", st, 400)
        body = nb()
        h = hqtest.sign_github(GH, body, event="a\tb")
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("event type with a TAB (control character)", st, 400)
        body = nb()
        h = hqtest.sign_github(GH, body, event="\xff\xfe")
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("event type of invalid UTF-8 bytes", st, 400)
        body = nb()
        h = hqtest.sign_github(GH, body)
        h["Content-Type"] = "application/" + "j" * 300
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("Content-Type of 312 bytes (dropped, not cut)", st, 202)
        body = nb()
        h = hqtest.sign_github(GH, body, event="a.b.*.#")
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh" % P, h, body))
        self.record("event type 'a.b.*.#' (routing-key wildcards)", st, (202, 400))

    # ---- source names --------------------------------------------------------------------------
    def test_odd_source_names(self):
        body = b"{}"
        h = hqtest.sign_github(GH, body)
        # CivetWeb URL-decodes the path before the handler sees it, and %00 ends the C string:
        # "<source>%00junk" names <source> itself (same secret, same routing): accepted.
        b0 = nb()
        st, _ = raw(self.gw.port, req("POST", "/webhooks/%s-gh%%00junk" % P,
                                      hqtest.sign_github(GH, b0), b0))
        self.record("source '<existing>%00junk' (decoded, cut at NUL)", st, 202)
        st, _ = raw(self.gw.port, req("POST", "/webhooks/\xc3\xbc", h, body))
        self.record("source of raw non-ASCII bytes (not %-encoded)", st, 400)
        names = ["..", "%2e%2e", "%2f", "..%2f..%2fetc%2fpasswd", "../../etc/passwd",
                 "a" * 1000, "%C3%BC" + P + "-gh", P + "-GH",
                 P + "-gh/", P + "-gh/x", "", "%", "%zz", P + "-gh%20"]
        for n in names:
            st, _ = raw(self.gw.port, req("POST", "/webhooks/" + n, h, body))
            self.record("source %r" % (n if len(n) < 40 else n[:12] + "...(%d)" % len(n)), st,
                        404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
