"""hookmq-console's sources API (GET /api/sources) and page data against a real gateway and
broker: with gateway.metrics_listen the counts are the gateway's own (requests by HTTP status,
verification failures by reason, equal to what its /metrics says); without it, or when the
metrics cannot be read (nobody listening, a hostile answer: oversized, malformed lines, unknown
sources, bad statuses), the counts come from the archive and the answer says so."""
import http.server
import json
import os
import re
import threading
import unittest

import archive_fixture as af
import hqtest
from console_fixture import Console
from gwfixture import Gateway

SECRET = "gh-secret"


def prom_counts(text, metric, label):
    """{(source, label value): count} from Prometheus text, parsed here independently."""
    out = {}
    pat = re.compile(r'^%s\{source="([^"]*)",%s="([^"]*)"\} (\d+)$' % (metric, label))
    for line in text.splitlines():
        m = pat.match(line)
        if m:
            out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


class HostileMetrics(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


class ConsoleSources(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = af.prefix("css")
        cls.src = "%s-gh" % cls.prefix
        cls.src2 = "%s-quiet" % cls.prefix
        cls.gw = Gateway('  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; },\n'
                         '  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; }'
                         % (cls.src, SECRET, cls.src2, SECRET))
        cls.gw.apply()
        cls.gw.start()
        with open(cls.gw.config) as f:
            cls.gw_text = f.read()
        cls.cs = Console(base=cls.gw_text).start()
        cls.ops = cls.cs.login("ro")
        for i in range(3):
            body = b'{"n":%d}' % i
            st, _h, b = cls.gw.post(cls.src, body, hqtest.sign_github(SECRET, body, "push",
                                                                       "%s-%d" % (cls.prefix, i)))
            assert st == 202, (st, b)
        body = b'{"forged":true}'
        st, _h, _b = cls.gw.post(cls.src, body, hqtest.sign_github("wrong", body, "push", "f1"))
        assert st == 401, st
        st, _h, _b = cls.gw.post(cls.src, body, {"Content-Type": "application/json"})
        assert st == 401, st
        cls.servers = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.shutdown()
        out = cls.cs.output()
        rc = cls.cs.stop()
        cls.gw.stop()  # also when the console failed
        assert rc == 0, out

    def sources(self, cs=None, query=""):
        return (cs or self.cs).get_json("/api/sources" + query, self.ops if cs is None else
                                        cs.login("ro"))

    def row(self, r, name):
        rows = [s for s in r["sources"] if s["name"] == name]
        self.assertEqual(len(rows), 1, r)
        return rows[0]

    def test_from_the_gateways_metrics(self):
        r = self.sources()
        self.assertEqual(r["origin"], "metrics", r)
        self.assertEqual(r["skipped_lines"], 0)
        self.assertNotIn("metrics_error", r)
        self.assertEqual([s["name"] for s in r["sources"]], [self.src, self.src2])
        s = self.row(r, self.src)
        self.assertEqual(s["scheme"], "github")
        self.assertEqual(s["requests"], {"202": 3, "401": 2})
        self.assertEqual(s["total"], 5)
        self.assertEqual(s["failures"], 2)
        self.assertEqual(sum(s["verification_failures"].values()), 2)
        # exactly what the gateway's /metrics says
        text = self.gw.metrics()
        want = {st: n for (src, st), n in prom_counts(
            text, "hookmq_gateway_requests_total", "status").items() if src == self.src}
        self.assertEqual({k: v for k, v in s["requests"].items()}, {k: v for k, v in want.items()})
        want = {rs: n for (src, rs), n in prom_counts(
            text, "hookmq_gateway_verification_failures_total", "reason").items()
            if src == self.src}
        self.assertEqual(s["verification_failures"], want)
        quiet = self.row(r, self.src2)
        self.assertEqual((quiet["requests"], quiet["total"], quiet["failures"]), ({}, 0, 0))

    def test_needs_a_session_and_get(self):
        st, _h, _b = self.cs.request("GET", "/api/sources")
        self.assertEqual(st, 401)
        st, _h, _b = self.cs.post("/api/sources", self.ops)
        self.assertEqual(st, 405)
        st, h, b = self.cs.request("GET", "/sources", session=self.ops)
        self.assertEqual(st, 200)
        self.assertIn(b"sources.js", b)

    def archive_console(self, gateway_lines, events=2):
        """A console whose gateway group is gateway_lines (replacing metrics_listen), on an
        archive holding `events` events of src written as the logger writes them."""
        text = re.sub(r'  metrics_listen = "[^"]*";\n', gateway_lines, self.gw_text)
        cs = Console(base=text)
        now = af.now_ms()
        base = af.segment_base(cs.archive_dir, now)
        os.makedirs(os.path.dirname(base), exist_ok=True)
        with open(base + ".jsonl", "w") as f:
            for i in range(events):
                f.write(af.record_line(self.src, "a-%d" % i, now - 1000 + i, b"{}") + "\n")
            # a redelivered copy is one event
            f.write(af.record_line(self.src, "a-0", now - 1000, b"{}") + "\n")
        return cs.start()

    def check_archive(self, cs, events):
        r = self.sources(cs)
        self.assertEqual(r["origin"], "archive", r)
        self.assertEqual(self.row(r, self.src)["events"], events)
        self.assertEqual(self.row(r, self.src2)["events"], 0)
        self.assertNotIn("requests", self.row(r, self.src))
        self.assertTrue(r["from"] < r["to"], r)
        # an hour-long window from two hours ago holds none of them
        r = self.sources(cs, "?from=-2h&to=-1h")
        self.assertEqual(self.row(r, self.src)["events"], 0)
        for q, want in (("?from=yesterday", "from/to"), ("?from=-1h&to=-2h", "after"),
                        ("?from=" + "1" * 100, "64 bytes")):
            st, _h, b = cs.request("GET", "/api/sources" + q, session=cs.login("ro"))
            self.assertEqual(st, 400, (q, b))
            self.assertIn(want, json.loads(b)["error"])
        return r

    def test_from_the_archive_without_metrics_listen(self):
        cs = self.archive_console("", events=2)
        try:
            r = self.check_archive(cs, 2)
            self.assertNotIn("metrics_error", r)
        finally:
            self.assertEqual(cs.stop(), 0)

    def test_from_the_archive_when_the_gateway_does_not_answer(self):
        port = hqtest.free_port()
        cs = self.archive_console('  metrics_listen = "127.0.0.1:%d";\n' % port, events=3)
        try:
            r = self.check_archive(cs, 3)
            self.assertIn("cannot reach the gateway's metrics", r["metrics_error"])
            hqtest.wait_for(lambda: "cannot read the gateway's metrics" in cs.output(), 10,
                            what="the warning in the console's log")
        finally:
            self.assertEqual(cs.stop(), 0)

    def hostile_server(self, body):
        handler = type("H", (HostileMetrics,), {"body": body})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.servers.append(srv)
        return srv.server_address[1]

    def test_hostile_metrics(self):
        src = self.src
        lines = [
            'hookmq_gateway_requests_total{source="%s",status="202"} 7' % src,
            'hookmq_gateway_requests_total{source="%s",status="999"} 1' % src,       # other
            'hookmq_gateway_requests_total{source="%s",status="20x"} 1' % src,       # other
            'hookmq_gateway_requests_total{source="not-configured",status="202"} 50',
            'hookmq_gateway_requests_total{source="%s",status="202"} -5' % src,      # bad
            'hookmq_gateway_requests_total{source="%s",status="202"} NaN' % src,     # bad
            'hookmq_gateway_requests_total{source="%s",status="202' % src,           # bad
            'hookmq_gateway_verification_failures_total{source="%s",reason="<script>"} 2' % src,
            'hookmq_gateway_verification_failures_total{source="%s",reason="bad_signature"} 1'
            % src,
            'hookmq_gateway_requests_total{source="%s"} %s' % (src, "9" * 5000),   # bad: long
        ]
        # more distinct statuses than the console keeps: the rest are "other"
        lines += ['hookmq_gateway_requests_total{source="%s",status="%d"} 1' % (self.src2, 500 + i)
                  for i in range(20)]
        port = self.hostile_server(("\n".join(lines) + "\n").encode())
        cs = self.archive_console('  metrics_listen = "127.0.0.1:%d";\n' % port)
        try:
            r = self.sources(cs)
            self.assertEqual(r["origin"], "metrics", r)
            self.assertEqual(r["skipped_lines"], 4)
            s = self.row(r, src)
            self.assertEqual(s["requests"], {"202": 7, "other": 2})
            self.assertEqual(s["verification_failures"], {"bad_signature": 1, "other": 2})
            q = self.row(r, self.src2)
            self.assertEqual(len(q["requests"]), 17)
            self.assertEqual(q["requests"]["other"], 4)
            self.assertEqual(q["total"], 20)
            self.assertNotIn("not-configured", json.dumps(r))
        finally:
            self.assertEqual(cs.stop(), 0)
        # an oversized answer is refused, and the archive answers instead
        port = self.hostile_server(b"hookmq_gateway_requests_total 1\n" * ((5 << 20) // 32))
        cs = self.archive_console('  metrics_listen = "127.0.0.1:%d";\n' % port)
        try:
            r = self.check_archive(cs, 2)
            self.assertIn("larger than", r["metrics_error"])
        finally:
            self.assertEqual(cs.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
