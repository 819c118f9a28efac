"""The publisher pool (core/pub.c) against the test broker, driven by hq_pubcheck.

- many concurrent callers: every publish confirmed, the queue holds them all;
- the broker frozen (SIGSTOP): calls return by their deadline; a connection whose socket
  stops moving is reset by the watchdog; after SIGCONT publishing works again;
- memory alarm (connection.blocked): calls fail at once with HQ_EBLOCKED, then recover;
- broker stopped: calls fail at once with HQ_EDOWN; broker started again: the pool
  reconnects by itself and publishes again, and nothing confirmed was lost.
Every wait is bounded."""
import json
import os
import random
import select
import signal
import subprocess
import tempfile
import time
import unittest

import hqtest

# How late a call may return after its deadline: scheduling on a loaded 2-core machine (64
# caller threads copying 1 MiB messages) takes a few hundred ms. A pool that let a caller wait
# on a frozen or blocked broker would be late by the watchdog's 5 s (PUB_STUCK_MS) or more.
LATE_MS = 1000

P = "pub%d" % random.randint(1000, 9999)
EXCHANGE = "test.%s.x" % P
QUEUE = "test.%s.q" % P
FULL = "test.%s.full" % P  # x-max-length 5, reject-publish: the broker nacks beyond that


def beam_pid():
    with open(os.path.join(os.environ["HQ_BROKER_DIR"], "rabbitmq.pid")) as f:
        return int(f.read().strip())


class PubCheck:
    def __init__(self, publishers=2, window=128, heartbeat=10, uris=None):
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="hq-pub-"), "pubcheck.log")
        self.log = open(self.log_path, "w")
        argv = [hqtest.binary("hq_pubcheck")]
        for u in uris or [hqtest.AMQP_URI]:
            argv += ["--uri", u]
        self.p = subprocess.Popen(
            argv + ["--exchange", EXCHANGE, "--publishers", str(publishers), "--window",
                    str(window), "--heartbeat", str(heartbeat)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)

    def cmd(self, line, timeout=120):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            raise AssertionError("hq_pubcheck: no answer to %r within %ds" % (line, timeout))
        out = self.p.stdout.readline()
        if not out:
            raise AssertionError("hq_pubcheck exited: %s" % self.output())
        return json.loads(out)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def quit(self, timeout=30):
        if self.p.returncode is not None:
            return self.p.returncode
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            return self.p.wait(timeout=timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.p.stdin.close()
            self.p.stdout.close()
            self.log.close()


class PubPool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hqtest.mgmt("PUT", "/exchanges/%2f/" + hqtest.q(EXCHANGE),
                    {"type": "topic", "durable": True, "auto_delete": False, "arguments": {}})
        hqtest.declare_queue(QUEUE, ["pubcheck.#"], exchange=EXCHANGE,
                             arguments={"x-queue-type": "quorum"})
        hqtest.declare_queue(FULL, ["pubcheck.nack"], exchange=EXCHANGE,
                             arguments={"x-max-length": 5, "x-overflow": "reject-publish"})
        cls.pc = PubCheck()
        cls.expected = 0  # confirmed publishes that must be in QUEUE

    @classmethod
    def tearDownClass(cls):
        try:
            cls.pc.quit()
        finally:
            hqtest.delete_queue(QUEUE)
            hqtest.delete_queue(FULL)
            hqtest.delete_exchange(EXCHANGE)

    def expect_depth(self, at_least_only=False, timeout=40):
        def check():
            n = hqtest.queue_depth(QUEUE)
            return n >= self.expected if at_least_only else n == self.expected
        hqtest.wait_for(check, timeout, 0.5, what="%s holds %d messages (now %s)" %
                        (QUEUE, self.expected, hqtest.queue_depth(QUEUE)))

    def test_1_many_callers(self):
        r = self.pc.cmd("wait-up 15000")
        self.assertTrue(r["ok"], self.pc.output())
        r = self.pc.cmd("publish 4000 32 10000 1024 many")
        self.assertEqual(r["ok"], 4000, r)
        PubPool.expected += 4000
        st = self.pc.cmd("stats")
        self.assertEqual(st["up"], 2)
        self.assertGreaterEqual(st["confirmed"], 4000)
        self.assertEqual(st["nacked"], 0)
        # deadlines already past: refused at once, nothing queued
        r = self.pc.cmd("publish 50 5 0 1024 late")
        self.assertEqual(r["etimedout"], 50, r)
        self.assertLess(r["max_call_ms"], 50, r)
        # messages AMQP cannot carry are refused at once and do not disturb the connections
        r = self.pc.cmd("bad")
        self.assertEqual(r["key"], "invalid argument or malformed input", r)
        self.assertEqual(r["big"], "input too large", r)
        self.assertLess(r["ms"], 50, r)
        self.assertEqual(self.pc.cmd("stats")["up"], 2)
        self.expect_depth()

    def test_1b_nack(self):
        """A queue that rejects publishes (x-overflow=reject-publish, full) makes the broker
        nack: the caller gets HQ_EBROKER, not a hang or a false success."""
        r = self.pc.cmd("publish 12 1 5000 1024 nack")   # one caller: deterministic order
        self.assertEqual((r["ok"], r["ebroker"]), (5, 7), r)
        self.assertGreaterEqual(self.pc.cmd("stats")["nacked"], 7)
        PubPool.expected += 12   # QUEUE took every copy
        self.expect_depth()
        hqtest.wait_for(lambda: hqtest.queue_depth(FULL) == 5, 30, 0.5, what="FULL holds 5")

    def test_2_frozen_broker(self):
        """SIGSTOP the broker: calls still return by their deadline (the pool never lets a
        caller wait on the broker); big messages fill the socket buffers, the watchdog resets
        the stuck connections, and with the broker unable to answer a handshake, the pool is
        down (HQ_EDOWN at once). After SIGCONT it recovers by itself."""
        self.assertTrue(self.pc.cmd("wait-up 15000")["ok"])
        pid = beam_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.time()
            r = self.pc.cmd("publish 40 8 1000 1024 frozen-small")
            self.assertEqual(r["etimedout"], 40, r)
            self.assertLess(r["max_over_deadline_ms"], LATE_MS, r)
            # 1 MiB messages until the kernel buffers are full and the sockets stop moving
            r = self.pc.cmd("publish 64 64 1500 1048576 frozen-big")
            self.assertEqual(r["ok"], 0, r)
            self.assertLess(r["max_over_deadline_ms"], LATE_MS, r)
            r = self.pc.cmd("wait-down 25000")
            self.assertTrue(r["ok"], "watchdog did not reset the stuck connections: " + self.pc.output())
            self.assertIn("stuck", self.pc.output())
            r = self.pc.cmd("publish 10 2 1000 1024 frozen-down")
            self.assertEqual(r["edown"], 10, r)
            self.assertLess(r["max_call_ms"], 50, r)
            self.assertLess(time.time() - t0, 60)
        finally:
            os.kill(pid, signal.SIGCONT)
        r = self.pc.cmd("wait-up 30000")
        self.assertTrue(r["ok"], self.pc.output())
        r = self.pc.cmd("publish 200 8 10000 1024 thawed")
        self.assertEqual(r["ok"], 200, r)
        PubPool.expected += 200
        # what was published but never confirmed while frozen may or may not be in the queue:
        # at least what was confirmed is
        self.expect_depth(at_least_only=True)
        hqtest.purge(QUEUE)
        hqtest.wait_for(lambda: hqtest.queue_depth(QUEUE) == 0, 30, 0.5, what="purge")
        PubPool.expected = 0

    def test_3_blocked(self):
        """A resource alarm (a disk alarm: a memory alarm set with rabbitmqctl does not stick
        in containers) blocks publishing connections once they publish (connection.blocked);
        then calls fail at once with HQ_EBLOCKED instead of waiting for their deadline."""
        self.assertTrue(self.pc.cmd("wait-up 15000")["ok"])
        hqtest.broker("ctl", "set_disk_free_limit", "100000GB")
        try:
            end = time.time() + 45
            blocked = False
            while time.time() < end and not blocked:
                # the broker blocks a connection when it publishes during the alarm
                r = self.pc.cmd("publish 4 4 1000 1024 probe")
                self.assertLess(r["max_over_deadline_ms"], LATE_MS, r)
                blocked = self.pc.cmd("wait-blocked 1000")["ok"]
            self.assertTrue(blocked, self.pc.output())
            r = self.pc.cmd("publish 20 4 3000 1024 blocked")
            self.assertEqual(r["eblocked"], 20, r)
            self.assertLess(r["max_call_ms"], 50, r)
            self.assertFalse(self.pc.cmd("stats")["connected"])
        finally:
            hqtest.broker("ctl", "set_disk_free_limit", "50MB")
        r = self.pc.cmd("wait-up 30000")
        self.assertTrue(r["ok"], self.pc.output())
        r = self.pc.cmd("publish 100 4 10000 1024 unblocked")
        self.assertEqual(r["ok"], 100, r)
        self.assertIn("broker unblocked publishing", self.pc.output())
        # probes that timed out while blocked were published later: at least the confirmed
        PubPool.expected += 100
        self.expect_depth(at_least_only=True)
        hqtest.purge(QUEUE)
        hqtest.wait_for(lambda: hqtest.queue_depth(QUEUE) == 0, 30, 0.5, what="purge")
        PubPool.expected = 0

    def test_4_broker_restart(self):
        self.assertTrue(self.pc.cmd("wait-up 15000")["ok"])
        before = self.pc.cmd("stats")
        hqtest.broker("stop")
        try:
            r = self.pc.cmd("wait-down 20000")
            self.assertTrue(r["ok"], self.pc.output())
            r = self.pc.cmd("publish 20 4 2000 1024 down")
            self.assertEqual(r["edown"], 20, r)
            self.assertLess(r["max_call_ms"], 50, r)
        finally:
            hqtest.broker("start")
        # backoff is capped at 5 s: the pool is back soon after the broker
        r = self.pc.cmd("wait-up 30000")
        self.assertTrue(r["ok"], self.pc.output())
        r = self.pc.cmd("publish 1000 8 10000 1024 again")
        self.assertEqual(r["ok"], 1000, r)
        PubPool.expected += 1000
        # both connections come back (the second one may still be in its backoff)
        st = hqtest.wait_for(lambda: (lambda s: s if s["up"] == 2 else None)(self.pc.cmd("stats")),
                             15, 0.2, what="both publisher connections up")
        self.assertGreaterEqual(st["reconnects"], before["reconnects"] + 2)
        # the quorum queue kept every confirmed message across the restart
        self.expect_depth()

    def test_5_clean_stop(self):
        """hq_pub_stop drains and returns promptly; no sanitizer report, no leak."""
        r = self.pc.cmd("publish 500 16 10000 1024 last")
        self.assertEqual(r["ok"], 500, r)
        t0 = time.time()
        self.assertEqual(self.pc.quit(), 0, self.pc.output())
        self.assertLess(time.time() - t0, 10)
        out = self.pc.output()
        self.assertNotIn("Sanitizer", out)
        self.assertNotIn("runtime error", out)
        self.assertIn("stopped in", out)

    def test_6_uri_walk(self):
        """The first node of broker.uris is down: the pool connects to the next one."""
        dead = "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()
        pc = PubCheck(publishers=2, uris=[dead, hqtest.AMQP_URI])
        try:
            self.assertTrue(pc.cmd("wait-up 15000")["ok"], pc.output())
            r = pc.cmd("publish 10 2 5000 1024 walk")
            self.assertEqual(r["ok"], 10, r)
        finally:
            self.assertEqual(pc.quit(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
