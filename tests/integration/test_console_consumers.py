"""hookmq-console's consumers and dead-letter APIs and pages against the real broker: each
consumer's work, retry-tier and DLQ queues with their depth, consumer count and state against
the config, the same findings as `hookmq-dlx status` (missing queues, drift); a consumer's
parked events with their failure, read and put back in order (nothing lost, same order on
every read); 503 when the broker is away."""
import base64
import hashlib
import json
import subprocess
import unittest

import hqtest
import wkfixture
from console_fixture import Console


class ConsoleConsumers(unittest.TestCase):
    def setUp(self):
        self.s = wkfixture.Setup("csc")
        self.c = self.s.consumer("billing", "log", delays=("1s", "5s"))
        self.s.apply()
        self.addCleanup(self.s.cleanup)
        with open(self.s.config) as f:
            base = f.read()
        self.cs = Console(base=base).start()
        self.addCleanup(self.cs.stop)
        self.ops = self.cs.login("ro")

    def consumer(self):
        r = self.cs.get_json("/api/consumers", self.ops)
        mine = [c for c in r["consumers"] if c["name"] == self.c.name]
        self.assertEqual(len(mine), 1, r)
        return r, {q["name"]: q for q in mine[0]["queues"]}

    def test_depths_and_drift(self):
        for i in range(3):
            self.assertTrue(hqtest.publish_via_api(self.c.dlq, b'{"n":%d}' % i,
                                                   {"message_id": "p%d" % i, "delivery_mode": 2}))
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == 3, 30, what="3 parked")
        r, qs = self.consumer()
        self.assertEqual(set(qs), {self.c.queue, self.c.dlq} | set(self.c.retry_queues()))
        self.assertEqual(qs[self.c.queue]["kind"], "work")
        self.assertEqual(qs[self.c.dlq]["kind"], "dlq")
        self.assertEqual(qs[self.c.dlq]["messages"], 3)
        self.assertEqual(qs[self.c.dlq]["consumers"], 0)
        for q in self.c.retry_queues():
            self.assertEqual(qs[q]["kind"], "retry")
        self.assertTrue(all(q["state"] == "ok" for q in qs.values()), qs)
        self.assertEqual((r["missing"], r["drifted"]), (0, 0))

        # a retry tier deleted: missing, as hookmq-dlx status says
        gone = self.c.retry_queues()[1]
        hqtest.delete_queue(gone)
        r, qs = self.consumer()
        self.assertEqual(qs[gone]["state"], "missing")
        self.assertNotIn("messages", qs[gone])
        self.assertEqual(r["missing"], 1)
        st = subprocess.run([hqtest.binary("hookmq-dlx"), "status", "-c", self.s.config],
                            capture_output=True, text=True, timeout=120)
        self.assertEqual(st.returncode, 3, st.stdout + st.stderr)
        self.assertRegex(st.stdout, r"%s\s+retry\s+-\s+-\s+MISSING" % gone.replace(".", r"\."))

        # declared with other arguments: drift, with the broker's reason
        hqtest.declare_queue(gone, arguments={"x-queue-type": "classic"})
        r, qs = self.consumer()
        self.assertEqual(qs[gone]["state"], "drift", qs[gone])
        self.assertIn("PRECONDITION_FAILED", qs[gone]["drift"])
        self.assertEqual(r["drifted"], 1)
        # the page is there for both roles
        st, _h, b = self.cs.request("GET", "/consumers", session=self.ops)
        self.assertEqual(st, 200)
        self.assertIn(b"/static/consumers.js", b)

    def test_dead_letters(self):
        sent = []
        for i in range(5):
            mid = "evt_csc_%d" % i
            headers = {"hookmq-source": "stripe", "hookmq-event-type": "invoice.paid",
                       "hookmq-attempt": 3, "hookmq-consumer": self.c.name,
                       "hookmq-attempts": 3, "hookmq-last-error": "exit 1: <b>boom</b> %d" % i,
                       "hookmq-failed-at": 1700000100000 + i, "hookmq-redriven": i % 2}
            self.assertTrue(hqtest.publish_via_api(
                self.c.dlq, b'{"n":%d}' % i, {"message_id": mid, "delivery_mode": 2,
                                              "headers": headers}))
            sent.append(mid)
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == 5, 30, what="5 parked")
        for _round in range(3):  # reading puts everything back, in order
            r = self.cs.get_json("/api/dlq/" + self.c.name, self.ops)
            self.assertEqual(r["queue"], self.c.dlq)
            self.assertEqual([m["id"] for m in r["messages"]], sent)
            self.assertFalse(r["more"])
        m = r["messages"][2]
        self.assertEqual((m["source"], m["type"], m["attempts"], m["redriven"]),
                         ("stripe", "invoice.paid", 3, 0))
        self.assertEqual(m["last_error"], "exit 1: <b>boom</b> 2")
        self.assertEqual(m["failed_at"], "2023-11-14T22:15:00.002Z")
        self.assertEqual(m["size"], len(b'{"n":2}'))
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == 5, 30, what="still 5 parked")
        r = self.cs.get_json("/api/dlq/%s?limit=2" % self.c.name, self.ops)
        self.assertEqual([m["id"] for m in r["messages"]], sent[:2])
        self.assertTrue(r["more"])
        r = self.cs.get_json("/api/dlq/" + self.c.name, self.ops)
        self.assertEqual([m["id"] for m in r["messages"]], sent)
        for bad, code in [("/api/dlq/nosuchconsumer", 404), ("/api/dlq/%s?limit=0" % self.c.name, 400),
                          ("/api/dlq/%s?limit=1001" % self.c.name, 400)]:
            st, _h, b = self.cs.request("GET", bad, session=self.ops)
            self.assertEqual(st, code, (bad, b))
        st, _h, b = self.cs.request("GET", "/dlq/" + self.c.name, session=self.ops)
        self.assertEqual(st, 200)
        self.assertIn(b"/static/dlq.js", b)

    def park(self, n):
        sent = []
        for i in range(n):
            mid = "evt_rd_%d" % i
            headers = {"hookmq-source": "stripe" if i < 4 else "github",
                       "hookmq-event-type": "invoice.paid" if i % 2 else "charge.failed",
                       "hookmq-attempt": 3, "hookmq-consumer": self.c.name,
                       "hookmq-attempts": 3, "hookmq-last-error": "exit 1",
                       "hookmq-failed-at": 1700000100000 + i, "hookmq-redriven": 0}
            self.assertTrue(hqtest.publish_via_api(
                self.c.dlq, b'{"n":%d}' % i, {"message_id": mid, "delivery_mode": 2,
                                              "headers": headers}))
            sent.append(mid)
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == n, 30, what="%d parked" % n)
        return sent

    def test_redrive(self):
        sent = self.park(6)
        audit = "hookmq.test.%s.audit" % self.c.name
        hqtest.declare_queue(audit, bindings=["%s.redriven" % self.c.name],
                             exchange="hookmq.lifecycle")
        self.addCleanup(hqtest.delete_queue, audit)
        ops = self.cs.login("ops")
        path = "/api/dlq/%s/redrive" % self.c.name
        # refused before anything moves
        st, _h, _b = self.cs.post(path, self.ops, {"ids": [sent[0]]})
        self.assertEqual(st, 403)  # a viewer
        st, _h, _b = self.cs.post(path, ops, {"ids": [sent[0]]}, csrf=False)
        self.assertEqual(st, 403)
        for body, want in [({"ids": []}, "ids must be"), ({"ids": [""]}, "each id"),
                           ({"filter": {"bogus": "x"}}, "unknown filter"),
                           ({"ids": ["a"], "filter": {}}, "either ids or filter"),
                           ({"other": 1}, "unknown member"), ({"ids": ["x" * 300]}, "each id")]:
            st, _h, b = self.cs.post(path, ops, body)
            self.assertEqual(st, 400, (body, b))
            self.assertIn(want, json.loads(b)["error"])
        st, _h, b = self.cs.request("POST", path, b"not json", {"X-CSRF-Token": ops.csrf}, session=ops)
        self.assertEqual(st, 400, b)
        st, _h, b = self.cs.post("/api/dlq/nosuch/redrive", ops, {"ids": ["a"]})
        self.assertEqual(st, 404, b)
        self.assertEqual(hqtest.queue_depth(self.c.dlq), 6)

        # by ids
        st, _h, b = self.cs.post(path, ops, {"ids": [sent[1], sent[3], "evt_not_there"]})
        self.assertEqual(st, 200, b)
        self.assertEqual(json.loads(b), {"matched": 2, "redriven": 2, "left": 4})
        left = [m["id"] for m in self.cs.get_json("/api/dlq/" + self.c.name, ops)["messages"]]
        self.assertEqual(left, [sent[0], sent[2], sent[4], sent[5]])
        got = hqtest.get_messages(self.c.queue)
        self.assertEqual([m["properties"]["message_id"] for m in got], [sent[1], sent[3]])
        self.assertEqual(got[0]["properties"]["headers"]["hookmq-redriven"], 1)
        self.assertEqual(got[0]["body"], b'{"n":1}')
        # by filter: the charge.failed events from stripe (0 and 2, not 4: github)
        st, _h, b = self.cs.post(path, ops, {"filter": {"source": "stripe", "type": "charge.*"}})
        self.assertEqual(st, 200, b)
        self.assertEqual(json.loads(b)["redriven"], 2)
        left = [m["id"] for m in self.cs.get_json("/api/dlq/" + self.c.name, ops)["messages"]]
        self.assertEqual(left, [sent[4], sent[5]])
        # the audit trail: log lines and lifecycle records naming the user
        out = self.cs.output()
        for mid in (sent[1], sent[3], sent[0], sent[2]):
            self.assertRegex(out, r"redriven user=ops consumer=%s event_id=%s" % (self.c.name, mid))
        recs = []
        hqtest.wait_for(lambda: recs.extend(json.loads(l) for m in hqtest.get_messages(audit)
                                            for l in m["body"].decode().splitlines()) or len(recs) >= 4,
                        30, what="4 lifecycle records")
        self.assertEqual(sorted(r["id"] for r in recs), sorted([sent[0], sent[1], sent[2], sent[3]]))
        for r in recs:
            self.assertEqual((r["verdict"], r["by"], r["consumer"]), ("redriven", "ops", self.c.name))
        # an empty filter takes the rest
        st, _h, b = self.cs.post(path, ops, {"filter": {}})
        self.assertEqual(json.loads(b)["redriven"], 2)
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == 0, 30, what="an empty DLQ")

    def test_edit_and_retry(self):
        sent = self.park(3)
        audit = "hookmq.test.%s.edits" % self.c.name
        hqtest.declare_queue(audit, bindings=["%s.edit" % self.c.name], exchange="hookmq.lifecycle")
        self.addCleanup(hqtest.delete_queue, audit)
        ops = self.cs.login("ops")
        path = "/api/dlq/%s/%s/edit" % (self.c.name, sent[1])
        st, _h, _b = self.cs.post(path, self.ops, {"body": "x"})
        self.assertEqual(st, 403)  # a viewer
        for body, want in [({}, "nothing to change"), ({"headers": {"hookmq-source": "x"}}, "may not be edited"),
                           ({"headers": {"x-death": "x"}}, "may not be edited"),
                           ({"body": "a", "body_b64": "YQ=="}, "not both"), ({"body_b64": "!!"}, "base64"),
                           ({"headers": {"k": 1}}, "must be a string"), ({"bogus": 1}, "unknown member")]:
            st, _h, b = self.cs.post(path, ops, body)
            self.assertEqual(st, 400, (body, b))
            self.assertIn(want, json.loads(b)["error"])
        st, _h, b = self.cs.post("/api/dlq/%s/nope/edit" % self.c.name, ops, {"body": "x"})
        self.assertEqual(st, 404, b)
        self.assertEqual(hqtest.queue_depth(self.c.dlq), 3)

        st, _h, b = self.cs.post(path, ops, {"body": '{"fixed":true}', "headers": {"http-x-note": "by hand"}})
        self.assertEqual(st, 200, b)
        self.assertIn("edited by ops from sha256:", json.loads(b)["summary"])
        got = hqtest.get_messages(self.c.queue)
        self.assertEqual(len(got), 1)
        m = got[0]
        self.assertEqual(m["properties"]["message_id"], sent[1])
        self.assertEqual(m["body"], b'{"fixed":true}')
        h = m["properties"]["headers"]
        self.assertEqual(h["hookmq-edited-from"], "sha256:" + hashlib.sha256(b'{"n":1}').hexdigest())
        self.assertEqual(h["hookmq-edited-by"], "ops")
        self.assertEqual(h["http-x-note"], "by hand")
        self.assertEqual(h["hookmq-source"], "stripe")
        self.assertNotIn("hookmq-last-error", h)
        left = [x["id"] for x in self.cs.get_json("/api/dlq/" + self.c.name, ops)["messages"]]
        self.assertEqual(left, [sent[0], sent[2]])
        # a body that is not UTF-8, by base64
        st, _h, b = self.cs.post("/api/dlq/%s/%s/edit" % (self.c.name, sent[2]), ops,
                                 {"body_b64": base64.b64encode(b"\xff\x00raw").decode()})
        self.assertEqual(st, 200, b)
        self.assertEqual(hqtest.get_messages(self.c.queue)[0]["body"], b"\xff\x00raw")
        # the audit trail
        self.assertRegex(self.cs.output(), r"edited and sent back user=ops consumer=%s event_id=%s"
                         % (self.c.name, sent[1]))
        recs = []
        hqtest.wait_for(lambda: recs.extend(json.loads(l) for m in hqtest.get_messages(audit)
                                            for l in m["body"].decode().splitlines()) or len(recs) >= 2,
                        30, what="2 edit records")
        r = [x for x in recs if x["id"] == sent[1]][0]
        self.assertEqual((r["verdict"], r["by"], r["consumer"]), ("edit", "ops", self.c.name))
        self.assertIn("body 7 -> 14 bytes, header http-x-note", r["error"])

    def test_broker_away(self):
        with open(self.cs.config) as f:
            text = f.read()
        dead = hqtest.free_port()
        text = text.replace("127.0.0.1:%d/" % hqtest.AMQP_PORT, "127.0.0.1:%d/" % dead)
        cs = Console(base=text.split("\narchive = {")[0] + "\n")
        cs.start()
        try:
            s = cs.login("ops")
            st, _h, b = cs.request("GET", "/api/consumers", session=s)
            self.assertEqual(st, 503, b)
            self.assertIn("unreachable", json.loads(b)["error"])
        finally:
            self.assertEqual(cs.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
