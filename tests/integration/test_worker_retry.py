"""hookmq-worker verdict routing (docs/interface.md, Retries): RETRY through every tier with the
exact attempt numbers and the tier delays (within a tolerance), the last tier repeated, a handler's
retry_after_ms choosing a longer tier, max_attempts then the DLQ with the failure headers,
REJECT straight to the DLQ, and a second consumer bound to the same events that sees each
event exactly once while the first one retries."""
import os
import time
import unittest

import hqtest
import wkfixture

# The tier delay is measured between the handler calls of attempts n and n+1 (the record
# plugin's stamp): the copy's TTL starts after call n began, so the gap is never shorter than
# the delay (EARLY_MS: the ms rounding of two stamps and the broker's timer), and at most the
# handler, the confirmed publish, TTL expiry, dead-lettering and redelivery longer (LATE_MS, on
# a busy 2-core machine). The log lines are written after the confirm, whose time varies.
EARLY_MS = 5
LATE_MS = 600


class WorkerRetry(wkfixture.SetupCase):
    """Each test makes its own wkfixture.Setup with self.setup_(); all are cleaned up at
    the end of the class."""

    def events_of(self, w, eid):
        return sorted((e for e in w.events() if e["event_id"] == eid), key=lambda e: e["ts"])

    def test_retry_through_every_tier(self):
        s = self.setup_("wkrt")
        rec = os.path.join(s.dir, "rec.txt")
        # attempts 1..4 fail: 200ms, 500ms, 1s, then 1s again (the last tier repeats); 5 acks
        c = s.consumer("c", wkfixture.plugin("record"),
                       options={"file": rec, "fail_until": 5, "stamp": 1},
                       delays=["200ms", "500ms", "1s"], max_attempts=6)
        s.apply()
        w = s.worker(c)
        try:
            ids = [s.publish('{"n":%d}' % i, msg_id="%s-%d" % (s.prefix, i)) for i in range(2)]
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) >= 10, 30,
                            what="5 attempts of 2 events")
            # nothing more may come: both events were acked (attempt 5) and no handler runs
            hqtest.wait_for(lambda: w.metric("hookmq_worker_verdicts_total", verdict="ack") == 2
                            and w.metric("hookmq_worker_in_flight") == 0, 10,
                            what="both events acked")
            lines = wkfixture.read_lines(rec)
            for eid in ids:
                self.assertEqual([l[2] for l in lines if l[1] == eid], ["1", "2", "3", "4", "5"])
                ev = self.events_of(w, eid)
                self.assertEqual([e["attempt"] for e in ev], ["1", "2", "3", "4", "5"])
                self.assertEqual([e["verdict"] for e in ev], ["retry"] * 4 + ["ack"])
                self.assertEqual([e.get("tier") for e in ev[:4]], ["200ms", "500ms", "1s", "1s"])
                calls = [int(l[3]) for l in lines if l[1] == eid]
                for n, (prev, nxt, want) in enumerate(zip(calls, calls[1:], [200, 500, 1000, 1000])):
                    self.assertGreaterEqual(nxt - prev, want - EARLY_MS, (eid, n + 1, calls))
                    self.assertLessEqual(nxt - prev, want + LATE_MS, (eid, n + 1, calls))
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="200ms"), 2)
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="500ms"), 2)
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="1s"), 4)
            self.assertEqual(w.metric("hookmq_worker_verdicts_total", verdict="retry"), 8)
            self.assertEqual(w.metric("hookmq_worker_verdicts_total", verdict="ack"), 2)
            for q in [c.queue, c.dlq] + c.retry_queues():
                s.wait_depth(q, 0)
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def check_dlq_copy(self, s, c, eid, attempts, error_part, t0):
        msgs = s.peek(c.dlq)
        self.assertEqual(len(msgs), 1, msgs)
        m = msgs[0]
        p = m["properties"]
        h = p["headers"]
        self.assertEqual(p["message_id"], eid)
        self.assertEqual(p.get("content_type"), "application/json")
        self.assertEqual(p.get("delivery_mode"), 2)
        self.assertEqual(m["payload"], '{"body":"%s"}' % eid)
        self.assertEqual(h["hookmq-consumer"], c.name)
        self.assertEqual(h["hookmq-attempts"], attempts)
        self.assertEqual(h.get("hookmq-attempt", 1), attempts)  # absent on a first delivery
        self.assertIn(error_part, h["hookmq-last-error"])
        self.assertLessEqual(len(h["hookmq-last-error"].encode()), 1024)
        self.assertTrue(t0 * 1000 - 1000 <= h["hookmq-failed-at"] <= time.time() * 1000 + 1000, h)
        self.assertEqual(h["hookmq-source"], "src")
        self.assertEqual(h["hookmq-event-type"], "thing.happened")
        self.assertNotIn("x-death", h)
        return h

    def test_max_attempts_then_dlq(self):
        s = self.setup_("wkmax")
        c = s.consumer("c", wkfixture.plugin("retry"), delays=["200ms"], max_attempts=3)
        s.apply()
        w = s.worker(c)
        try:
            t0 = time.time()
            eid = "%s-max" % s.prefix
            s.publish('{"body":"%s"}' % eid, msg_id=eid)
            s.wait_depth(c.dlq, 1, timeout=20)
            self.check_dlq_copy(s, c, eid, 3, "retry plugin: try %s again later (attempt 3)" % eid,
                                t0)
            ev = self.events_of(w, eid)
            self.assertEqual([e["attempt"] for e in ev], ["1", "2", "3"])
            self.assertEqual([e["result"] for e in ev], ["retried", "retried", "dead_lettered"])
            self.assertEqual(ev[-1]["dlq"], "max_attempts")
            self.assertIn("retry plugin", ev[-1]["error"])
            self.assertEqual(w.metric("hookmq_worker_dead_lettered_total", reason="max_attempts"), 1)
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="200ms"), 2)
            s.wait_depth(c.queue, 0)
        finally:
            wkfixture.stop_all(w)

    def test_reject_straight_to_dlq(self):
        s = self.setup_("wkrej")
        c = s.consumer("c", wkfixture.plugin("reject"), delays=["200ms"], max_attempts=5)
        s.apply()
        w = s.worker(c)
        try:
            t0 = time.time()
            eid = "%s-rej" % s.prefix
            s.publish('{"body":"%s"}' % eid, msg_id=eid)
            s.wait_depth(c.dlq, 1, timeout=20)
            h = self.check_dlq_copy(s, c, eid, 1, "", t0)
            self.assertTrue(h["hookmq-last-error"])
            ev = self.events_of(w, eid)
            self.assertEqual(len(ev), 1)
            self.assertEqual(ev[0]["verdict"], "reject")
            self.assertEqual(ev[0]["dlq"], "rejected")
            self.assertEqual(w.metric("hookmq_worker_dead_lettered_total", reason="rejected"), 1)
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="200ms"), 0)
        finally:
            wkfixture.stop_all(w)

    def test_retry_after_chooses_a_longer_tier(self):
        s = self.setup_("wkra")
        c = s.consumer("c", wkfixture.plugin("retry"), options={"retry_after_ms": 400},
                       delays=["200ms", "500ms", "1s"], max_attempts=2)
        s.apply()
        w = s.worker(c)
        try:
            eid = "%s-ra" % s.prefix
            s.publish('{"body":"%s"}' % eid, msg_id=eid)
            s.wait_depth(c.dlq, 1, timeout=20)
            ev = self.events_of(w, eid)
            self.assertEqual(ev[0]["tier"], "500ms")
            # between the log lines (each written after its attempt's confirm, whose time
            # varies): longer than the 200 ms tier could give, by a margin
            gap = (ev[1]["ts"] - ev[0]["ts"]) * 1000
            self.assertGreaterEqual(gap, 350)
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="500ms"), 1)
            self.assertEqual(w.metric("hookmq_worker_retries_total", tier="200ms"), 0)
        finally:
            wkfixture.stop_all(w)

    def test_second_consumer_sees_each_event_once(self):
        s = self.setup_("wk2c")
        ra, rb = os.path.join(s.dir, "a.txt"), os.path.join(s.dir, "b.txt")
        a = s.consumer("a", wkfixture.plugin("record"), options={"file": ra, "fail_until": 3},
                       delays=["200ms", "300ms"], max_attempts=5)
        b = s.consumer("b", wkfixture.plugin("record"), options={"file": rb})
        s.apply()
        wa, wb = s.worker(a), s.worker(b)
        try:
            ids = [s.publish('{"n":%d}' % i, msg_id="%s-%d" % (s.prefix, i)) for i in range(5)]
            hqtest.wait_for(lambda: len(wkfixture.read_lines(ra)) >= 15, 30,
                            what="3 attempts of 5 events in consumer a")
            # a's last attempts are acked and its tiers are empty: every retry copy has been
            # routed by now, so a stray one would be in b's queue; b's queue empty: b has it
            hqtest.wait_for(lambda: wa.metric("hookmq_worker_verdicts_total", verdict="ack") == 5,
                            30, what="consumer a to ack its 5 events")
            for q in a.retry_queues():
                s.wait_depth(q, 0)
            s.wait_depth(b.queue, 0)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rb)) >= 5, 30,
                            what="consumer b to record 5 events")
            la, lb = wkfixture.read_lines(ra), wkfixture.read_lines(rb)
            self.assertEqual(sorted(l[1] for l in lb), sorted(ids))  # exactly once each
            self.assertTrue(all(l[2] == "1" for l in lb))
            for eid in ids:
                self.assertEqual([l[2] for l in la if l[1] == eid], ["1", "2", "3"])
            self.assertEqual(wb.metric("hookmq_worker_deliveries_total"), 5)
            s.wait_depth(b.queue, 0)
        finally:
            wkfixture.stop_all(wa, wb)


if __name__ == "__main__":
    unittest.main(verbosity=2)
