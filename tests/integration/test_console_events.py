"""hookmq-console's events API against a real gateway, archive logger and broker: the list
(newest first, filters with `hookmq-archive query` meanings, cursor pages that cover every event
once), status badges from lifecycle records, the event detail (exact body, signature headers
redacted, history as `hookmq-archive history`), ids shared by two sources, and hostile input
(bad cursors, oversized filters, bad times and limits)."""
import base64
import json
import time
import unittest
import urllib.parse

import archive_fixture as af
import hqtest
from console_fixture import Console
from gwfixture import Gateway, sources_block

SECRET = "gh-secret"


class ConsoleEvents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = af.prefix("cse")
        cls.src = "%s-github" % cls.prefix
        cls.src2 = "%s-gh2" % cls.prefix
        extra = '  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; },' % (cls.src2, SECRET)
        cls.gw = Gateway(sources_block(cls.prefix, extra))
        cls.gw.apply()
        cls.gw.start()
        cls.ar = af.Archive(batch_max=32, batch_ms=20)
        cls.ar.apply()
        cls.ar.start()
        cls.cs = Console(archive_dir=cls.ar.dir).start()
        cls.ops = cls.cs.login("ops")
        # 7 events, one by one so their received_at differ, the last with a hostile body
        cls.ids = []
        cls.bodies = {}
        for i in range(7):
            eid = "%s-evt-%d" % (cls.prefix, i)
            body = (b'{"n":%d,"kind":"%s"}' % (i, b"invoice" if i % 2 else b"charge"))
            etype = "invoice.paid" if i % 2 else "charge.succeeded"
            if i == 6:
                body = b'<script>alert(1)</script>\xff\xfe not UTF-8'
            cls.send(cls.src, eid, body, etype)
            cls.ids.append(eid)
            cls.bodies[eid] = body
            time.sleep(0.005)  # distinct received_at (ms), not an assertion wait
        # the same id from a second source
        cls.shared = cls.ids[0]
        cls.send(cls.src2, cls.shared, b'{"other":true}', "charge.succeeded")
        cls.ar.wait_count(7, "--source", cls.src, timeout=90)
        cls.ar.wait_count(1, "--source", cls.src2, timeout=90)

    @classmethod
    def send(cls, src, eid, body, etype):
        st, _h, b = cls.gw.post(src, body, hqtest.sign_github(SECRET, body, etype, eid))
        assert st == 202, (st, b)

    @classmethod
    def tearDownClass(cls):
        out = cls.cs.output()
        rc = cls.cs.stop()
        cls.ar.stop()  # also when the console failed
        cls.gw.stop()
        assert rc == 0, out

    def events(self, **q):
        return self.cs.get_json("/api/events?" + urllib.parse.urlencode(q), self.ops)

    def bad(self, query, want):
        st, _h, b = self.cs.request("GET", "/api/events?" + query, session=self.ops)
        self.assertEqual(st, 400, (query, b))
        self.assertIn(want, json.loads(b)["error"])

    def test_list_newest_first(self):
        r = self.events(source=self.src)
        got = [e["id"] for e in r["events"]]
        self.assertEqual(got, list(reversed(self.ids)))
        self.assertIsNone(r["next"])
        e = r["events"][0]
        self.assertEqual(e["source"], self.src)
        self.assertEqual(e["type"], "charge.succeeded")
        self.assertEqual(e["routing_key"], "%s.charge.succeeded" % self.src)
        self.assertRegex(e["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIsInstance(e["received_at_ms"], int)
        # the same set as `hookmq-archive query`
        recs, _ = self.ar.query("--source", self.src)
        self.assertEqual(sorted(r["id"] for r in recs), sorted(self.ids))
        # both sources without a filter, both copies of the shared id
        r = self.events(limit=500)
        mine = [(e["source"], e["id"]) for e in r["events"] if e["source"] in (self.src, self.src2)]
        self.assertEqual(len(mine), 8)
        self.assertIn((self.src2, self.shared), mine)

    def test_cursor_pages(self):
        seen, cursor, pages = [], None, 0
        while True:
            q = {"source": self.src, "limit": 3}
            if cursor:
                q["cursor"] = cursor
            r = self.events(**q)
            pages += 1
            self.assertLessEqual(len(r["events"]), 3)
            seen += [e["id"] for e in r["events"]]
            cursor = r["next"]
            if not cursor:
                break
            self.assertLess(pages, 10)
        self.assertEqual(seen, list(reversed(self.ids)))
        self.assertEqual(pages, 3)

    def test_filters(self):
        r = self.events(id=self.ids[3])
        self.assertEqual([(e["source"], e["id"]) for e in r["events"]], [(self.src, self.ids[3])])
        r = self.events(source=self.src, type="invoice.*")
        self.assertEqual([e["id"] for e in r["events"]], [self.ids[5], self.ids[3], self.ids[1]])
        r = self.events(source=self.src, grep='"n":4')
        self.assertEqual([e["id"] for e in r["events"]], [self.ids[4]])
        r = self.events(source=self.src, **{"from": "-1h", "to": "now"})
        self.assertEqual(len(r["events"]), 7)
        r = self.events(source=self.src, **{"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"})
        self.assertEqual(r["events"], [])
        r = self.events(source=self.src + "-nope")
        self.assertEqual(r, {"events": [], "next": None})

    def test_status_badges(self):
        now = af.now_ms()
        parked, processed, retrying = self.ids[1], self.ids[2], self.ids[3]
        af.publish_lifecycle(self.src, parked, "billing", "retry_scheduled", 1, now, tier="10s",
                             error="HTTP 500")
        af.publish_lifecycle(self.src, parked, "billing", "dead_lettered", 2, now + 1,
                             error="HTTP 500 again")
        af.publish_lifecycle(self.src, parked, "audit", "processed", 1, now + 2)
        af.publish_lifecycle(self.src, processed, "billing", "processed", 1, now)
        af.publish_lifecycle(self.src, retrying, "billing", "retry_scheduled", 1, now, tier="10s")

        def statuses():
            return {e["id"]: e["status"] for e in self.events(source=self.src)["events"]}
        hqtest.wait_for(lambda: statuses()[retrying] == "retrying" and
                        statuses()[parked] == "parked" and statuses()[processed] == "processed",
                        60, what="the status badges")
        st = statuses()
        self.assertEqual(st[self.ids[0]], "received")
        # the detail agrees, with the history of `hookmq-archive history`
        d = self.cs.get_json("/api/events/%s?source=%s" % (parked, self.src), self.ops)
        self.assertEqual(d["status"], "parked")
        h = d["history"]
        self.assertEqual(h[0]["kind"], "received")
        self.assertEqual([(x["consumer"], x["attempt"], x["verdict"]) for x in h[1:]],
                         [("billing", 1, "retry_scheduled"), ("billing", 2, "dead_lettered"),
                          ("audit", 1, "processed")])
        self.assertEqual(h[1]["tier"], "10s")
        self.assertEqual(h[2]["error"], "HTTP 500 again")
        rc, out, err = self.ar.run("history", parked, "--source", self.src, "--format", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.splitlines()), len(h))
        # a redrive after parking: retrying again until an outcome
        af.publish_lifecycle(self.src, parked, "billing", "redriven", 2, now + 10)
        hqtest.wait_for(lambda: statuses()[parked] == "retrying", 60, what="retrying after a redrive")
        af.publish_lifecycle(self.src, parked, "billing", "processed", 1, now + 11)
        hqtest.wait_for(lambda: statuses()[parked] == "processed", 60, what="processed after a redrive")

    def test_detail(self):
        eid = self.ids[2]
        d = self.cs.get_json("/api/events/" + urllib.parse.quote(eid) + "?source=" + self.src, self.ops)
        ev = d["event"]
        self.assertEqual((ev["id"], ev["source"], ev["type"]), (eid, self.src, "charge.succeeded"))
        self.assertEqual(base64.b64decode(ev["body_b64"]), self.bodies[eid])
        self.assertEqual(ev["size"], len(self.bodies[eid]))
        self.assertEqual(ev["properties"]["message_id"], eid)
        self.assertEqual(ev["headers"]["hookmq-source"], self.src)
        self.assertEqual(ev["headers"]["http-x-github-event"], "charge.succeeded")
        # the signature header is there, redacted
        self.assertEqual(ev["headers"]["http-x-hub-signature-256"], "[redacted]")
        self.assertNotIn(b"sha256=", json.dumps(d).encode())
        self.assertEqual(d["history"][0]["kind"], "received")
        # a hostile body comes back as the exact bytes
        hostile = self.ids[6]
        d = self.cs.get_json("/api/events/%s?source=%s" % (hostile, self.src), self.ops)
        self.assertEqual(base64.b64decode(d["event"]["body_b64"]), self.bodies[hostile])
        # a viewer reads it too
        v = self.cs.login("ro")
        self.assertEqual(self.cs.get_json("/api/events/%s?source=%s" % (eid, self.src), v)["event"]["id"], eid)

    def test_shared_id_and_missing(self):
        st, _h, b = self.cs.request("GET", "/api/events/" + self.shared, session=self.ops)
        self.assertEqual(st, 409, b)
        self.assertEqual(sorted(json.loads(b)["sources"]), sorted([self.src, self.src2]))
        d = self.cs.get_json("/api/events/%s?source=%s" % (self.shared, self.src2), self.ops)
        self.assertEqual(base64.b64decode(d["event"]["body_b64"]), b'{"other":true}')
        st, _h, b = self.cs.request("GET", "/api/events/%s-nope" % self.prefix, session=self.ops)
        self.assertEqual(st, 404, b)
        st, _h, b = self.cs.request("GET", "/api/events/" + "x" * 300, session=self.ops)
        self.assertEqual(st, 400, b)

    def test_hostile_queries(self):
        for c in ["garbage", "v1.", "v1.abc.00.00", "v1.123.zz.61", "v1.123.61", "v1.123..61",
                  "v1.123.61.", "v1.123.6.61", "v1.123.0061.61", "v1.-5.61.61", "v2.123.61.61",
                  "v1.123.61.61.61", "v1.99999999999999999999.61.61"]:
            self.bad("cursor=" + urllib.parse.quote(c), "bad cursor")
        self.bad("source=" + "a" * 300, "longer than 256 bytes")
        self.bad("grep=" + "a" * 5000, "longer than 256 bytes")
        self.bad("cursor=" + "v1.1." + "61" * 2000 + ".61", "longer than")
        for lim in ["0", "501", "abc", "-1", "1e3", ""]:
            if lim:
                self.bad("limit=" + lim, "limit")
        self.bad("from=yesterday", "from: expected RFC 3339")
        self.bad("to=2026-13-45T00:00:00Z", "to: expected RFC 3339")
        self.bad("from=now&to=-1h", "from is after to")
        self.bad("source=%00", "NUL")
        # a cursor of another filter is still a valid position: nothing breaks
        r = self.events(source=self.src, limit=2)
        r2 = self.events(source=self.src2, cursor=r["next"])
        self.assertIsInstance(r2["events"], list)

    def test_after_live_tail(self):
        """after=KEY (the live tail): only the events above that key, newest first."""
        def key(e):
            return "v1.%d.%s.%s" % (e["received_at_ms"], e["source"].encode().hex(),
                                     e["id"].encode().hex())
        all7 = self.events(source=self.src)["events"]
        r = self.events(source=self.src, after=key(all7[0]))
        self.assertEqual(r, {"events": [], "next": None})
        r = self.events(source=self.src, after=key(all7[3]))
        self.assertEqual([e["id"] for e in r["events"]], [e["id"] for e in all7[:3]])
        r = self.events(source=self.src, after=key(all7[3]), limit=2)
        self.assertEqual([e["id"] for e in r["events"]], [e["id"] for e in all7[:2]])
        # a new event of another source shows up above the newest key of all sources
        top = self.events(limit=1)["events"][0]
        src = "%s-none" % self.prefix
        st, _h, b = self.gw.post(src, b'{"tail":1}', {"Content-Type": "application/json",
                                                      "X-Event-Id": "tail-1"})
        self.assertEqual(st, 202, b)
        hqtest.wait_for(lambda: self.events(after=key(top))["events"], 60,
                        what="the new event above the top")
        got = self.events(after=key(top))["events"]
        self.assertEqual([e["source"] for e in got], [src])
        for c in ["garbage", "v1.123.61", "v2.1.61.61"]:
            self.bad("after=" + urllib.parse.quote(c), "bad after")


if __name__ == "__main__":
    unittest.main(verbosity=2)
