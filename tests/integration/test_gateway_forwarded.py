"""Forwarded headers and truncated header sets (issue 11, item 1): allow_from is judged on every
X-Forwarded-For line joined in order (RFC 7230 3.2.2), so a client cannot choose the checked
address by sending its own first line ahead of the one its proxy appends; a request with more
header lines than CivetWeb keeps (64) is answered 431, never judged on what was kept. The
fixture's trusted proxy is 127.0.0.2. Loopback only."""
import json
import random
import socket
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "fw%d" % random.randint(1000, 9999)
GH = SECRETS["github"]
SOURCES = """
  { name = "%(p)s-allow"; scheme = "github"; secrets = [ "%(gh)s" ]; allow_from = [ "10.9.8.0/24" ]; },
  { name = "%(p)s-gh"; scheme = "github"; secrets = [ "%(gh)s" ]; }
""" % {"p": P, "gh": GH}


def send(port, source, header_lines, body=None, source_addr="127.0.0.2"):
    """POST a signed github request from source_addr with extra raw header lines (kept in
    order, duplicates allowed); returns (status, parsed JSON body)."""
    body = body or json.dumps({"n": time.time_ns()}).encode()
    h = hqtest.sign_github(GH, body)
    lines = ["POST /webhooks/%s HTTP/1.1" % source, "Host: 127.0.0.1", "Connection: close",
             "Content-Type: application/json", "Content-Length: %d" % len(body)]
    lines += ["%s: %s" % kv for kv in h.items()]
    lines += list(header_lines)
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    s = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source_addr, 0))
    buf = b""
    try:
        s.sendall(data)
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    finally:
        s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), (json.loads(rest) if rest else None)


class Forwarded(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(SOURCES)
        cls.gw.apply()
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        assert rc == 0, "gateway exit code %r" % rc

    def test_client_line_before_proxy_line_is_not_believed(self):
        # The client sends "X-Forwarded-For: 10.9.8.7" (inside allow_from); the trusted proxy
        # appends its own line with the address it saw, 192.0.2.1 (outside): 403.
        st, b = send(self.gw.port, P + "-allow",
                     ["X-Forwarded-For: 10.9.8.7", "X-Forwarded-For: 192.0.2.1"])
        self.assertEqual(st, 403, b)
        self.assertEqual(b["error"], "forbidden")
        # the same spoof inside one line of a comma list, for comparison
        st, _ = send(self.gw.port, P + "-allow", ["X-Forwarded-For: 10.9.8.7, 192.0.2.1"])
        self.assertEqual(st, 403)

    def test_proxy_line_last_decides(self):
        # a client outside allow_from claims 192.0.2.9; the proxy appends the real 10.9.8.7
        st, b = send(self.gw.port, P + "-allow",
                     ["X-Forwarded-For: 192.0.2.9", "X-Forwarded-For: 10.9.8.7"])
        self.assertEqual(st, 202, b)
        # a chain of two trusted hops, one line each: the rightmost untrusted entry decides
        st, b = send(self.gw.port, P + "-allow",
                     ["X-Forwarded-For: 10.9.8.7", "X-Forwarded-For: 192.0.2.1",
                      "X-Forwarded-For: 127.0.0.2"])
        self.assertEqual(st, 403, b)

    def test_more_headers_than_kept_is_431(self):
        extra = ["X-H%d: v" % i for i in range(70)]  # CivetWeb keeps 64
        # the X-Forwarded-For line the proxy appended would be past what CivetWeb keeps
        st, b = send(self.gw.port, P + "-allow",
                     ["X-Forwarded-For: 10.9.8.7"] + extra + ["X-Forwarded-For: 192.0.2.1"])
        self.assertEqual(st, 431, b)
        self.assertEqual(b["reason"], "too_many_headers")
        st, _ = send(self.gw.port, P + "-gh", extra, source_addr="127.0.0.1")
        self.assertEqual(st, 431)
        # well below the limit: accepted
        st, b = send(self.gw.port, P + "-gh", extra[:40], source_addr="127.0.0.1")
        self.assertEqual(st, 202, b)
        m = self.gw.metrics()
        self.assertIn('hookmq_gateway_requests_total{source="%s-gh",status="431"}' % P, m)


if __name__ == "__main__":
    unittest.main(verbosity=2)
