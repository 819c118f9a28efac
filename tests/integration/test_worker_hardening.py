"""hookmq-worker hardening (issue "months in production"): SIGTERM during a max_per_second wait
still sends the batched acks of the events already handled (none of them comes back); the
handler sees the event's original routing key on a retry and on a delivery through exchange ""
to hookmq.NAME (redrive, `hookmq-replay --to-consumer`); a DLQ copy that can never be
published (its headers no longer fit a frame) is parked as it is instead of being requeued
forever; running out of memory while building the handler's view of an event requeues it
instead of dead-lettering it; an exec child killed by a signal the worker did not send (the OOM
killer's SIGKILL, a service manager's SIGTERM to the whole control group) is retried, not
dead-lettered."""
import os
import re
import signal
import unittest

import hqtest
import wkfixture


class WorkerHardening(wkfixture.SetupCase):
    """Each test makes its own wkfixture.Setup with self.setup_(); all are cleaned up at
    the end of the class."""

    def test_sigterm_with_max_per_second_sends_pending_acks(self):
        s = self.setup_("wkrate")
        rec = os.path.join(s.dir, "rec.txt")
        # prefetch 20: acks go out in batches of 10, so the handled events' acks are pending
        # while the slot waits for the rate limit before the next one
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec}, prefetch=20,
                       extra="max_per_second = 4;")
        s.apply()
        total = 12
        ids = ["%s-%02d" % (s.prefix, i) for i in range(total)]
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            for i in ids:
                s.publish("{}", msg_id=i)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) >= 3, 30,
                            interval=0.02, what="three events handled")
            w.signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=20), 0, w.output())
            handled = [l[1] for l in wkfixture.read_lines(rec)]
            self.assertGreaterEqual(len(handled), 3)
            self.assertLess(len(handled), 10)  # the stop came before a batch was full
            self.assertEqual(len(set(handled)), len(handled))
            acked = [e["event_id"] for e in w.events() if e["result"] == "acked"]
            self.assertEqual(sorted(acked), sorted(handled))
            # every handled event was acked on the broker: only the others are back
            left = sorted(m["properties"]["message_id"] for m in s.peek(c.queue, 100))
            self.assertEqual(left, sorted(set(ids) - set(handled)))
            self.assertEqual(s.depth(c.dlq), 0)
        finally:
            wkfixture.stop_all(w)

    def test_abandoned_slot_sends_the_acks_of_earlier_events(self):
        # SIGTERM, and a handler that outlives --stop-timeout: the slot is abandoned, but the
        # events it handled before are acked, so only the hung one comes back
        s = self.setup_("wkaband")
        done = os.path.join(s.dir, "done.txt")
        pidf = os.path.join(s.dir, "pid")
        c = s.consumer("c", "exec", options={
            "command": 'case "$HOOKMQ_EVENT_ID" in *-hang) echo $$ > %s.tmp; mv %s.tmp %s; '
                       'exec sleep 30;; esac; echo "$HOOKMQ_EVENT_ID" >> %s'
                       % (pidf, pidf, pidf, done), "timeout": "60s"}, prefetch=16)
        s.apply()
        ids = ["%s-%d" % (s.prefix, i) for i in range(3)] + ["%s-hang" % s.prefix]
        for i in ids:  # all queued before the worker starts: delivered back to back
            s.publish("{}", msg_id=i)
        s.wait_depth(c.queue, len(ids))
        w = s.worker(c, args=["--stop-timeout", "1"], env={"TMPDIR": s.dir})
        pid = None
        try:
            pid = int(hqtest.wait_for(lambda: wkfixture.read_text(pidf).strip(), 20,
                                      interval=0.05, what="the hung handler running"))
            self.assertEqual(len(wkfixture.read_lines(done)), 3)
            w.signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=20), 1, w.output())
            self.assertIn("still running after the stop timeout", w.output())
            left = [m["properties"]["message_id"] for m in s.peek(c.queue, 100)]
            self.assertEqual(left, ["%s-hang" % s.prefix])
        finally:
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wkfixture.stop_all(w)

    def test_original_routing_key_on_retry_and_redrive(self):
        s = self.setup_("wkrk")
        out = os.path.join(s.dir, "rk.txt")
        # attempt 1 asks for a retry; every attempt records the key it saw
        c = s.consumer("c", "exec", options={
            "command": 'echo "$HOOKMQ_EVENT_ID $HOOKMQ_ATTEMPT $HOOKMQ_ROUTING_KEY" >> %s; '
                       '[ "$HOOKMQ_ATTEMPT" -ge 2 ] || exit 75' % out,
            "timeout": "10s"}, delays=["200ms"])
        s.apply()
        w = s.worker(c)
        try:
            s.publish("{}", msg_id="rk-1", source="shop", etype="Orders/Create Now",
                      routing_key="shop.orders.create_now")
            hqtest.wait_for(lambda: any(l[:2] == ["rk-1", "2"] for l in wkfixture.read_lines(out)),
                            20, what="the retried attempt")
            # a DLQ redrive and `hookmq-replay --to-consumer` deliver through exchange "" to
            # the work queue
            s.publish("{}", msg_id="rk-2", source="shop", etype="products/update",
                      routing_key=c.queue, exchange="amq.default",
                      headers={"hookmq-attempt": 2})
            hqtest.wait_for(lambda: any(l[0] == "rk-2" for l in wkfixture.read_lines(out)),
                            20, what="the redriven event")
            seen = {(l[0], l[1]): l[2] for l in wkfixture.read_lines(out)}
            self.assertEqual(seen[("rk-1", "1")], "shop.orders.create_now")
            self.assertEqual(seen[("rk-1", "2")], "shop.orders.create_now")
            self.assertEqual(seen[("rk-2", "2")], "shop.products.update")
            hqtest.wait_for(lambda: len([e for e in w.events() if e["result"] == "acked"]) == 2,
                            20, what="both acked")
        finally:
            wkfixture.stop_all(w)

    def test_unpublishable_dlq_copy_is_parked_not_requeued(self):
        s = self.setup_("wkbig")
        runs = os.path.join(s.dir, "runs.txt")
        # REJECT with a 1 KiB error: the DLQ copy gets a 1 KiB hookmq-last-error
        c = s.consumer("c", "exec", options={
            "command": 'echo "$HOOKMQ_EVENT_ID" >> %s; head -c 1500 /dev/zero | tr "\\0" x >&2; '
                       'exit 3' % runs, "timeout": "10s"})
        s.apply()
        w = s.worker(c)
        try:
            # properties just under one frame (128 KiB): delivered fine, but the DLQ copy's
            # extra headers make it too large to publish
            big = "y" * 130150
            s.publish("{}", msg_id="%s-big" % s.prefix, headers={"http-x-big": big})
            s.wait_depth(c.dlq, 1, timeout=20)
            msgs = s.peek(c.dlq)
            self.assertEqual(msgs[0]["properties"]["message_id"], "%s-big" % s.prefix)
            self.assertEqual(len(msgs[0]["properties"]["headers"]["http-x-big"]), len(big))
            self.assertEqual(msgs[0]["properties"]["headers"]["x-death"][0]["reason"],
                             "rejected")
            hqtest.wait_for(lambda: w.metric("hookmq_worker_dead_lettered_total",
                                             reason="too_large") == 1, 10,
                            what="the too_large metric")
            self.assertEqual(w.metric("hookmq_worker_dead_lettered_total", reason="rejected"), 0)
            ev = [e for e in w.events() if e["event_id"] == "%s-big" % s.prefix]
            self.assertEqual([(e["result"], e.get("dlq")) for e in ev],
                             [("dead_lettered", "too_large")])
            self.assertIn("reason=too_large", w.output())
            self.assertEqual(len(wkfixture.read_lines(runs)), 1)  # the handler ran once
            self.assertEqual(s.depth(c.queue), 0)
        finally:
            wkfixture.stop_all(w)

    def test_copy_to_a_missing_queue_is_refused_not_lost(self):
        # an operator deleted a retry tier: the copy is published with mandatory, comes back
        # (basic.return), and the event goes back to the work queue instead of being acked
        # with its copy dropped by the broker
        s = self.setup_("wkmiss")
        runs = os.path.join(s.dir, "runs.txt")
        c = s.consumer("c", "exec", options={
            "command": 'echo "$HOOKMQ_EVENT_ID" >> %s; exit 75' % runs, "timeout": "10s"},
            delays=["200ms"])
        s.apply()
        eid = "%s-miss" % s.prefix
        w = s.worker(c)  # it checks the topology at start: delete the tier afterwards
        try:
            s.delete_queue(c.retry_queues()[0])
            s.publish("{}", msg_id=eid)
            hqtest.wait_for(lambda: w.lines("the broker refused the copy; the event goes back to "
                                            "the work queue"), 30, what="the copy refused")
            hqtest.run_dlx_apply(s.config)  # the tier is back: the next copy is taken
            hqtest.wait_for(lambda: any(e["event_id"] == eid and e["result"] == "retried"
                                        for e in w.events()), 30, what="the event retried")
            ev = [e["result"] for e in w.events() if e["event_id"] == eid]
            self.assertEqual(ev[0], "requeued", w.output())
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_copy_refused_by_broker_max_message_size_is_parked(self):
        # an operator lowered the broker's max_message_size while larger events were queued:
        # their retry copies are refused (the broker closes the copy connection's channel);
        # the event is parked as it is instead of running its handler forever
        s = self.setup_("wkmax")
        runs = os.path.join(s.dir, "runs.txt")
        c = s.consumer("c", "exec", options={
            "command": 'echo "$HOOKMQ_EVENT_ID" >> %s; exit 75' % runs, "timeout": "10s"},
            delays=["200ms"])
        s.apply()
        eid = "%s-max" % s.prefix
        s.publish("x" * 20000, msg_id=eid)
        s.wait_depth(c.queue, 1)
        # RabbitMQ 3.10 reads the limit from the application environment when a channel opens,
        # 4.0 from a persistent term: set both, put both back
        env = re.search(r"\{ok,(\d+)\}", hqtest.broker(
            "ctl", "eval", "application:get_env(rabbit, max_message_size).").stdout)
        term = hqtest.broker("ctl", "eval",
                             "persistent_term:get(max_message_size, undefined).").stdout.strip()
        w = None
        try:
            hqtest.broker("ctl", "eval", "application:set_env(rabbit, max_message_size, 10000), "
                          "persistent_term:put(max_message_size, 10000).")
            w = s.worker(c)
            s.wait_depth(c.dlq, 1, timeout=30)
            msgs = s.peek(c.dlq)
            self.assertEqual(msgs[0]["properties"]["message_id"], eid)
            self.assertEqual(len(msgs[0]["payload"]), 20000)
            self.assertEqual(msgs[0]["properties"]["headers"]["x-death"][0]["reason"],
                             "rejected")
            self.assertEqual(wkfixture.read_lines(runs), [[eid]])  # the handler ran once
            hqtest.wait_for(lambda: w.metric("hookmq_worker_dead_lettered_total",
                                             reason="too_large") == 1, 10,
                            what="the too_large metric")
            # the copy connection learns the limit from the channel close: parked at once,
            # without a redelivery
            ev = [(e["verdict"], e["result"]) for e in w.events() if e["event_id"] == eid]
            self.assertEqual(ev, [("retry", "dead_lettered")])
            self.assertIn("the copy cannot be published; parking the event in the DLQ as it is",
                          w.output())
            self.assertEqual(s.depth(c.queue), 0)
        finally:
            hqtest.broker("ctl", "eval", "application:set_env(rabbit, max_message_size, %s)."
                          % (env.group(1) if env else "134217728"))
            hqtest.broker("ctl", "eval", "persistent_term:put(max_message_size, %s)." % term
                          if term.isdigit() else "persistent_term:erase(max_message_size).")
            wkfixture.stop_all(w)

    @unittest.skipIf(os.environ.get("HQ_SANITIZE"),
                     "a sanitizer runtime must come first in the library list, before the shim")
    def test_out_of_memory_building_the_event_requeues(self):
        s = self.setup_("wkoom")
        rec = os.path.join(s.dir, "rec.txt")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec}, prefetch=1)
        s.apply()
        # 4 hookmq-* headers + 1000 others: the handler's view needs realloc(1004 * 24 bytes),
        # which fails once
        shim = os.path.join(hqtest.BUILD, "tests", "integration", "libhq_failalloc.so")
        w = s.worker(c, env={"TMPDIR": s.dir, "LD_PRELOAD": shim,
                             "HQ_FAILALLOC_SIZE": str(1004 * 24), "HQ_FAILALLOC_TIMES": "1"})
        try:
            eid = "%s-oom" % s.prefix
            s.publish("{}", msg_id=eid, headers={"x-pad-%04d" % i: "v" for i in range(1000)})
            hqtest.wait_for(lambda: any(e["result"] == "acked" for e in w.events()), 20,
                            what="the event handled after the requeue")
            ev = [(e["verdict"], e["result"]) for e in w.events() if e["event_id"] == eid]
            self.assertEqual(ev, [("unreadable", "requeued"), ("ack", "acked")])
            self.assertIn("out of memory", w.output())
            self.assertEqual([l[1] for l in wkfixture.read_lines(rec)], [eid])
            self.assertEqual(s.depth(c.dlq), 0)
        finally:
            wkfixture.stop_all(w)

    def exec_pid_consumer(self, s, tag):
        """A consumer whose exec child writes its pid, then sleeps until killed (attempt 1);
        attempt 2 and later succeed."""
        d = os.path.join(s.dir, tag)
        os.makedirs(d)
        c = s.consumer(tag, "exec", options={
            "command": 'echo "$HOOKMQ_ATTEMPT" >> %s/attempts; '
                       '[ "$HOOKMQ_ATTEMPT" -ge 2 ] && exit 0; '
                       'echo $$ > %s/pid.tmp && mv %s/pid.tmp %s/pid; exec sleep 60'
                       % (d, d, d, d), "timeout": "120s"}, delays=["200ms"])
        return c, d

    def test_exec_child_killed_from_outside_is_retried(self):
        s = self.setup_("wkkill")
        c, d = self.exec_pid_consumer(s, "c")
        s.apply()
        w = s.worker(c)
        try:
            eid = s.publish("{}", msg_id="%s-oom" % s.prefix)
            pid = hqtest.wait_for(lambda: wkfixture.read_text(os.path.join(d, "pid")).strip(),
                                  20, interval=0.05, what="the exec child running")
            os.kill(int(pid), signal.SIGKILL)  # as the OOM killer does
            hqtest.wait_for(lambda: any(e["result"] == "acked" for e in w.events()), 20,
                            what="the retried attempt acked")
            ev = [(e["attempt"], e["verdict"], e["result"]) for e in w.events()
                  if e["event_id"] == eid]
            self.assertEqual(ev, [("1", "retry", "retried"), ("2", "ack", "acked")])
            self.assertIn("killed by signal 9 SIGKILL", w.output())
            self.assertEqual(s.depth(c.dlq), 0)
        finally:
            wkfixture.stop_all(w)

    def test_stop_signalling_the_whole_group_retries_the_exec_event(self):
        # what `systemctl stop` does without KillMode=mixed: SIGTERM to the worker and to its
        # exec child at once; the event goes to the retry tier, and the worker exits 0
        s = self.setup_("wkstop")
        c, d = self.exec_pid_consumer(s, "c")
        s.apply()
        w = s.worker(c)
        try:
            eid = s.publish("{}", msg_id="%s-stop" % s.prefix)
            pid = hqtest.wait_for(lambda: wkfixture.read_text(os.path.join(d, "pid")).strip(),
                                  20, interval=0.05, what="the exec child running")
            w.signal(signal.SIGTERM)
            os.kill(int(pid), signal.SIGTERM)
            self.assertEqual(w.wait(timeout=30), 0, w.output())
            ev = [(e["verdict"], e["result"]) for e in w.events() if e["event_id"] == eid]
            self.assertEqual(ev, [("retry", "retried")])
            self.assertEqual(s.depth(c.dlq), 0)
            # the retry tier hands it back to the work queue with attempt 2
            s.wait_depth(c.queue, 1, timeout=20)
            msg = s.peek(c.queue)[0]
            self.assertEqual(msg["properties"]["message_id"], eid)
            self.assertEqual(msg["properties"]["headers"]["hookmq-attempt"], 2)
        finally:
            wkfixture.stop_all(w)


if __name__ == "__main__":
    unittest.main()
