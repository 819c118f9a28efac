"""hookmq-worker, long handlers and signals: a handler slower than twice the heartbeat keeps its
connection; a handler that never returns still heartbeats, and SIGTERM then exits 1 after the
stop timeout leaving its event unacked for redelivery; SIGTERM with handlers in flight lets them
finish, settles them and exits 0 with the rest left in the queue; SIGHUP reloads handler
options (re-initialising the handler between deliveries), the log level and max_per_second
without losing events; max_per_second is respected across handler threads."""
import os
import signal
import time
import unittest

import hqtest
import wkfixture


class WorkerSignals(wkfixture.SetupCase):
    """Each test makes its own wkfixture.Setup with self.setup_(); all are cleaned up at
    the end of the class."""

    def test_slow_handler_keeps_its_connection(self):
        s = self.setup_("wkhb", heartbeat_s=1)
        c = s.consumer("c", wkfixture.plugin("slow"), options={"ms": 3500}, prefetch=2)
        s.apply()
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            eid = s.publish("{}", msg_id="%s-slow" % s.prefix)
            hqtest.wait_for(lambda: len(w.events()) >= 1, 15, what="the slow event settled")
            # the slot is idle again and its ack counted: a redelivery (after a lost
            # connection) would have come before the first settlement
            hqtest.wait_for(lambda: w.metric("hookmq_worker_in_flight") == 0
                            and w.metric("hookmq_worker_verdicts_total", verdict="ack") == 1,
                            10, what="the slot idle, one ack")
            ev = w.events()
            self.assertEqual(len(ev), 1)
            self.assertEqual((ev[0]["event_id"], ev[0]["result"]), (eid, "acked"))
            self.assertGreaterEqual(int(ev[0]["latency_ms"]), 3500)
            out = w.output()
            self.assertNotIn("connection lost", out)
            self.assertEqual(len(w.lines("consuming")), 1)  # never reconnected
            self.assertEqual(w.metric("hookmq_worker_deliveries_total"), 1)
            self.assertEqual(w.metric("hookmq_worker_redeliveries_total"), 0)
            self.assertEqual(w.metric("hookmq_worker_connected"), 1)
            conns = hqtest.wait_for(lambda: s.connections(c), 15, what="the connection listed")
            self.assertEqual(len(conns), 1)
            self.assertEqual(conns[0]["timeout"], 1)  # the negotiated heartbeat
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_hung_handler_heartbeats_and_sigterm_times_out(self):
        s = self.setup_("wkhang", heartbeat_s=1)
        c = s.consumer("c", wkfixture.plugin("hang"), prefetch=1)
        s.apply()
        w = s.worker(c, args=["--stop-timeout", "2"], env={"TMPDIR": s.dir})
        try:
            eid = s.publish("{}", msg_id="%s-hang" % s.prefix)
            hqtest.wait_for(lambda: w.metric("hookmq_worker_in_flight") == 1, 10,
                            what="the handler running")
            before = hqtest.wait_for(lambda: s.connections(c), 15, what="the connection listed")
            # the broker drops a connection silent for twice the heartbeat (2 s here). Nothing
            # positive marks "not dropped", so this is a time window, checked all along rather
            # than slept through: the same connection stays listed for 4 s.
            names = [x["name"] for x in before]
            end = time.time() + 4
            while time.time() < end:
                self.assertEqual([x["name"] for x in s.connections(c)], names)
                self.assertNotIn("connection lost", w.output())
                time.sleep(0.25)  # polling interval of the check above
            after = s.connections(c)
            self.assertEqual([x["name"] for x in after], [x["name"] for x in before])
            self.assertNotIn("connection lost", w.output())
            self.assertEqual(w.metric("hookmq_worker_connected"), 1)
            t0 = time.time()
            w.signal(signal.SIGTERM)
            st = w.wait(timeout=15)
            took = time.time() - t0
            self.assertEqual(st, 1, w.output())
            self.assertGreaterEqual(took, 1.8)
            self.assertLess(took, 6)
            self.assertIn("still running after the stop timeout", w.output())
            msgs = s.peek(c.queue)  # back in the queue, unacked
            self.assertEqual([m["properties"]["message_id"] for m in msgs], [eid])
            self.assertTrue(msgs[0]["redelivered"])
        finally:
            wkfixture.stop_all(w)

    def test_sigterm_finishes_in_flight_handlers(self):
        s = self.setup_("wkterm")
        c = s.consumer("c", wkfixture.plugin("slow"), options={"ms": 1000}, prefetch=4,
                       concurrency=2)
        s.apply()
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            ids = [s.publish("{}", msg_id="%s-%d" % (s.prefix, i)) for i in range(6)]
            hqtest.wait_for(lambda: w.metric("hookmq_worker_in_flight") == 2, 10,
                            interval=0.05, what="two handlers running")
            t0 = time.time()
            w.signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=15), 0, w.output())
            self.assertLess(time.time() - t0, 3)
            acked = [e["event_id"] for e in w.events() if e["result"] == "acked"]
            self.assertEqual(len(acked), 2, w.output())
            self.assertIn("stopped", w.output())
            left = [m["properties"]["message_id"] for m in s.peek(c.queue)]
            self.assertEqual(sorted(left + acked), sorted(ids))  # nothing lost
        finally:
            wkfixture.stop_all(w)

    def test_sighup_reloads_without_losing_events(self):
        s = self.setup_("wkhup")
        ra, rb = os.path.join(s.dir, "a.txt"), os.path.join(s.dir, "b.txt")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": ra}, concurrency=2)
        s.apply()
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            first = [s.publish("{}", msg_id="%s-a%d" % (s.prefix, i)) for i in range(5)]
            hqtest.wait_for(lambda: len(wkfixture.read_lines(ra)) >= 5, 15, what="5 in a")
            c.options = {"file": rb}
            c.extra = "max_per_second = 50;"
            s.log_level = "debug"
            s.write()
            w.signal(signal.SIGHUP)
            hqtest.wait_for(lambda: w.lines("config reloaded"), 10, what="reload")
            second = [s.publish("{}", msg_id="%s-b%d" % (s.prefix, i)) for i in range(5)]
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rb)) >= 5, 15, what="5 in b")
            # every delivery handled and settled (a handler writing twice would be counted)
            hqtest.wait_for(lambda: w.metric("hookmq_worker_verdicts_total", verdict="ack") >= 10
                            and w.metric("hookmq_worker_in_flight") == 0, 15,
                            what="10 acks, no handler running")
            self.assertEqual(sorted(l[1] for l in wkfixture.read_lines(ra)), sorted(first))
            self.assertEqual(sorted(l[1] for l in wkfixture.read_lines(rb)), sorted(second))
            self.assertEqual(w.lines("config reloaded")[0]["max_per_second"], "50")
            self.assertGreaterEqual(len(w.lines("handler re-initialised with the reloaded "
                                                "options")), 1)
            # a bad config is refused and the worker goes on
            hqtest.write_config(s.config, "broker = { oops")
            w.signal(signal.SIGHUP)
            hqtest.wait_for(lambda: w.lines("reload failed, keeping the running config"), 10,
                            what="refused reload")
            self.assertTrue(w.alive())
            s.write()
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_rate_limit(self):
        s = self.setup_("wkrate")
        c = s.consumer("c", wkfixture.plugin("ack"), prefetch=8, concurrency=2,
                       extra="max_per_second = 5;")
        s.apply()
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            for i in range(16):
                s.publish("{}", msg_id="%s-%d" % (s.prefix, i))
            hqtest.wait_for(lambda: len(w.events()) >= 16, 20, what="16 events")
            ts = sorted(e["ts"] for e in w.events())
            span = ts[-1] - ts[0]
            # 5/s with a burst of 1: 16 events take 3 s, whichever thread runs them
            self.assertGreaterEqual(span, 2.7, ts)
            self.assertLess(span, 6.0, ts)
            # never more than 5 in any second: six events take 1.0 s. The log times lag the
            # admissions by a scheduling delay that varies on a loaded machine (0.886 s seen
            # at a load of 20); a burst of 2 would show 0.8 s
            for a, b in zip(ts, ts[5:]):
                self.assertGreaterEqual(b - a, 0.85, ts)
        finally:
            wkfixture.stop_all(w)


if __name__ == "__main__":
    unittest.main(verbosity=2)
