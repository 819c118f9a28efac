"""hookmq-worker and crashes: `kill -9` in the middle of handlers loses nothing (the restarted
worker gets the unacked events again), and a poison event that aborts the worker every time
is parked in the DLQ after a bounded number of deliveries:
- by the worker's crash ledger after 5 crashes (quorum and classic queues), without taking the
  innocent events queued behind it along;
- by the broker's x-delivery-limit when every run has a fresh ledger (workers on other hosts),
  with an x-death (reason delivery_limit) that `hookmq-dlx list` explains."""
import os
import signal
import subprocess
import tempfile
import unittest

import hqtest
import wkfixture

CRASH_LIMIT = 5       # WK_CRASH_LIMIT in worker/worker.h
DELIVERY_LIMIT = 20   # HQ_TOPOLOGY_DELIVERY_LIMIT in core/hq_topology.h


class WorkerCrash(wkfixture.SetupCase):
    """Each test makes its own wkfixture.Setup with self.setup_(); all are cleaned up at
    the end of the class."""

    def test_kill9_mid_handler_then_restart(self):
        s = self.setup_("wkk9")
        rec = os.path.join(s.dir, "rec.txt")
        # exec: a slow handler that records what it processed
        c = s.consumer("c", "exec", options={
            "command": 'sleep 0.3; echo "$HOOKMQ_EVENT_ID $HOOKMQ_ATTEMPT" >> %s' % rec,
            "timeout": "10s"}, prefetch=4, concurrency=2)
        s.apply()
        env = {"TMPDIR": s.dir}
        w = s.worker(c, env=env)
        ids = [s.publish('{"n":%d}' % i, msg_id="%s-%02d" % (s.prefix, i)) for i in range(12)]
        try:
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) >= 2, 20, interval=0.05,
                            what="first events processed")
            hqtest.wait_for(lambda: w.metric("hookmq_worker_in_flight") >= 1, 10, interval=0.05,
                            what="handlers running")
            w.kill9()
            done_before = {e["event_id"] for e in w.events() if e["result"] == "acked"}
            self.assertLess(len(done_before), 12)
            w2 = s.worker(c, env=env)
            hqtest.wait_for(lambda: {l[0] for l in wkfixture.read_lines(rec)} >= set(ids), 40,
                            what="every event processed after the restart")
            s.wait_depth(c.queue, 0)
            processed = {e["event_id"] for e in w2.events() if e["result"] == "acked"}
            self.assertEqual(done_before | processed, set(ids))  # acked by one or the other
            self.assertGreater(w2.metric("hookmq_worker_redeliveries_total"), 0)
            self.assertEqual(w2.stop(), 0)
        finally:
            wkfixture.stop_all(w)
            if "w2" in locals():
                wkfixture.stop_all(w2)

    def run_until(self, s, c, cond, env, limit):
        """Start the worker again and again until cond(); returns the runs that crashed."""
        crashes = 0
        for _ in range(limit):
            w = s.worker(c, wait=False, env=env() if callable(env) else env)
            hqtest.wait_for(lambda: not w.alive() or cond(), 20, interval=0.05,
                            what="worker crash or the condition")
            if w.alive():
                return crashes, w
            st = w.wait()
            self.assertEqual(st, -signal.SIGABRT, w.output())
            crashes += 1
        self.fail("condition not reached after %d runs" % limit)

    def poison_parked_by_ledger(self, s):
        c = s.consumer("c", wkfixture.plugin("crash"), prefetch=4)
        s.apply()
        poison = s.publish("this one is poison", msg_id="%s-poison" % s.prefix)
        good = [s.publish('{"ok":%d}' % i, msg_id="%s-ok%d" % (s.prefix, i)) for i in range(3)]
        env = {"TMPDIR": s.dir}
        crashes, w = self.run_until(s, c, lambda: len(s.peek(c.dlq)) == 1, env, CRASH_LIMIT + 3)
        try:
            self.assertEqual(crashes, CRASH_LIMIT)
            hqtest.wait_for(lambda: {e["event_id"] for e in w.events()
                                     if e["result"] == "acked"} >= set(good), 20,
                            what="the innocent events acked")
            msgs = s.peek(c.dlq)
            self.assertEqual(len(msgs), 1)
            h = msgs[0]["properties"]["headers"]
            self.assertEqual(msgs[0]["properties"]["message_id"], poison)
            self.assertEqual(h["hookmq-consumer"], c.name)
            self.assertEqual(h["hookmq-last-error"], "handler crashed %d times" % CRASH_LIMIT)
            ev = [e for e in w.events() if e["event_id"] == poison]
            self.assertEqual(ev[0]["verdict"], "crashed")
            self.assertEqual(ev[0]["result"], "dead_lettered")
            self.assertEqual(w.metric("hookmq_worker_dead_lettered_total", reason="crashed"), 1)
            self.assertTrue(os.path.exists(os.path.join(s.dir, "hookmq-%s.inflight" % c.name)))
            self.assertEqual(w.stop(), 0)
            s.wait_depth(c.queue, 0)
        finally:
            wkfixture.stop_all(w)

    def test_poison_parked_by_crash_ledger_quorum(self):
        self.poison_parked_by_ledger(self.setup_("wkpq"))

    def test_poison_parked_by_crash_ledger_classic(self):
        # a vhost of its own: hookmq.archive and hookmq.unrouted are quorum queues in "/"
        s = self.setup_("wkpc", queue_type="classic")
        s.vhost = "hq-" + s.prefix
        self.poison_parked_by_ledger(s)

    def test_poison_parked_by_delivery_limit(self):
        s = self.setup_("wkdl")
        c = s.consumer("c", wkfixture.plugin("crash"), prefetch=1)
        s.apply()
        poison = s.publish("poison again", msg_id="%s-poison" % s.prefix)
        # every run gets a fresh crash ledger, like workers on other hosts
        crashes, w = self.run_until(s, c, lambda: len(s.peek(c.dlq)) == 1,
                                    lambda: {"TMPDIR": tempfile.mkdtemp(dir=s.dir)},
                                    DELIVERY_LIMIT + 5)
        try:
            self.assertGreaterEqual(crashes, DELIVERY_LIMIT)
            self.assertLessEqual(crashes, DELIVERY_LIMIT + 1)
            msgs = s.peek(c.dlq)
            h = msgs[0]["properties"]["headers"]
            self.assertEqual(msgs[0]["properties"]["message_id"], poison)
            self.assertNotIn("hookmq-consumer", h)  # the broker put it there, not the worker
            self.assertEqual(h["x-death"][0]["reason"], "delivery_limit")
            self.assertEqual(h["x-death"][0]["queue"], c.queue)
            r = subprocess.run([hqtest.binary("hookmq-dlx"), "list", c.name, "-c", s.config],
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                self.assertIn(poison, r.stdout)
                self.assertIn("delivery_limit", r.stdout)
        finally:
            wkfixture.stop_all(w)


if __name__ == "__main__":
    unittest.main(verbosity=2)
