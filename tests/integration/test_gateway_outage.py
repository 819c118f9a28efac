"""Durability when the broker is away: confirm-or-spool, drain, kill -9, admission control.

Every id answered 202 must end up in the bound queue (duplicates are counted and reported,
never silent), and no id that was not answered 202 may appear."""
import collections
import json
import os
import random
import signal
import threading
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "ou%d" % random.randint(1000, 9999)
QUEUE = "test.outage.%s" % P
GH = SECRETS["github"]
SOURCES = '  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; }' % (P, GH)


def post_one(gw, i, tag, timeout=30):
    body = json.dumps({"i": i, "tag": tag, "pad": "x" * 200}).encode()
    delivery = "%s-%s-%d" % (P, tag, i)
    try:
        st, h, b = gw.post(P, body, hqtest.sign_github(GH, body, "push", delivery), timeout=timeout)
    except OSError as e:
        return delivery, None, str(e)
    return delivery, st, h


def load(gw, n, tag, threads=8, pause=0.0):
    """Send n distinct signed events from several threads; returns {id: status}."""
    results = {}
    lock = threading.Lock()
    it = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            d, st, _ = post_one(gw, i, tag)
            with lock:
                results[d] = st
            if pause:
                time.sleep(pause)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    return results


def metric_sum(gw, name):
    """The sum of a metric's samples (all label sets) on the gateway's /metrics."""
    total = 0.0
    for line in gw.metrics().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def audit(test, accepted, timeout=90):
    """Every accepted id is in QUEUE; nothing else is. Returns the duplicate count."""
    want = set(accepted)
    seen = collections.Counter()
    end = time.time() + timeout
    while time.time() < end:
        for m in hqtest.get_messages(QUEUE):
            seen[m["properties"]["message_id"]] += 1
        if want <= set(seen):
            break
        time.sleep(0.5)
    missing = want - set(seen)
    extra = set(seen) - want
    dups = sum(c - 1 for c in seen.values() if c > 1)
    print("audit: accepted=%d delivered=%d missing=%d unexpected=%d duplicates=%d"
          % (len(want), len(seen), len(missing), len(extra), dups))
    test.assertEqual(missing, set(), "accepted ids lost")
    test.assertEqual(extra, set(), "ids that were never accepted appeared")
    return dups


def beam_pid():
    with open(os.path.join(os.environ["HQ_BROKER_DIR"], "rabbitmq.pid")) as f:
        return int(f.read().strip())


class Outage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hqtest.ensure_topology()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s.#" % P])

    @classmethod
    def tearDownClass(cls):
        hqtest.delete_queue(QUEUE)

    def setUp(self):
        hqtest.purge(QUEUE)

    def test_broker_stopped_under_load_then_restarted(self):
        gw = Gateway(SOURCES, confirm_timeout_ms=1000)
        gw.apply()
        gw.start()
        try:
            res = {}
            # about 200 requests/s for about 7 s: the broker goes away 1 s in and stays away
            # for several seconds (stopping and booting a node takes that long)
            t = threading.Thread(target=lambda: res.update(load(gw, 1500, "stop", threads=6, pause=0.03)))
            t.start()
            hqtest.wait_for(lambda: metric_sum(gw, "hookmq_gateway_requests_total") >= 150, 60,
                            what="the load flowing")
            hqtest.broker("stop")
            # the outage lasts while the gateway spools a good part of the load
            hqtest.wait_for(lambda: metric_sum(gw, "hookmq_gateway_spooled_total") >= 100
                            or not t.is_alive(), 120, what="events spooled during the outage")
            hqtest.broker("start")
            t.join(timeout=300)
            self.assertFalse(t.is_alive())
            statuses = collections.Counter(res.values())
            print("answers:", dict(statuses))
            self.assertEqual(len(res), 1500)
            # every answer is 202 (durable) or 503 (not durable); never a 4xx, never a hang
            self.assertLessEqual(set(statuses), {202, 503})
            accepted = [d for d, st in res.items() if st == 202]
            self.assertGreater(len(accepted), 0)
            hqtest.wait_for(lambda: "hookmq_gateway_spool_events 0" in gw.metrics(), 120,
                            what="spool drained")
            self.assertRegex(gw.metrics(), r"hookmq_gateway_spooled_total [1-9]")
            audit(self, accepted)
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_kill9_with_spool_then_restart_drains(self):
        dead = "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()
        gw = Gateway(SOURCES, uris=[dead], confirm_timeout_ms=500)
        gw.start()
        res = load(gw, 60, "k9", threads=4)
        self.assertEqual(set(res.values()), {202}, res)
        self.assertIn("hookmq_gateway_spool_events 60", gw.metrics())
        self.assertEqual(hqtest.http_request(gw.port, "GET", "/readyz")[0], 200)
        gw.proc.kill9()  # returns once the process is reaped: it can publish nothing later
        self.assertEqual(hqtest.get_messages(QUEUE), [])
        # same spool, a reachable broker
        gw2 = Gateway(SOURCES, workdir=gw.workdir)
        gw2.apply()
        gw2.start()
        try:
            hqtest.wait_for(lambda: "hookmq_gateway_spool_events 0" in gw2.metrics(), 60,
                            what="spool drained")
            audit(self, list(res))
            segs = [f for f in os.listdir(gw2.spool_dir) if f.endswith(".hqs")]
            self.assertLessEqual(len(segs), 1)
        finally:
            self.assertEqual(gw2.stop(), 0)

    def test_no_spool_broker_down_is_503_never_4xx(self):
        dead = "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()
        gw = Gateway(SOURCES, uris=[dead], spool=False, confirm_timeout_ms=300)
        gw.start()
        try:
            t0 = time.time()
            d, st, h = post_one(gw, 1, "nospool")
            self.assertEqual(st, 503)
            self.assertIn("retry-after", h)
            self.assertLess(time.time() - t0, 2.0)
            self.assertEqual(hqtest.http_request(gw.port, "GET", "/readyz")[0], 503)
            self.assertEqual(hqtest.http_request(gw.port, "GET", "/healthz")[0], 200)
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_confirm_timeout_spools_and_admission_503(self):
        gw = Gateway(SOURCES, confirm_timeout_ms=700, max_in_flight=2)
        gw.apply()
        gw.start()
        pid = beam_pid()
        try:
            # freeze the broker: publishes are sent but never confirmed
            os.kill(pid, signal.SIGSTOP)
            res = {}
            ts = [threading.Thread(target=lambda i=i: res.__setitem__(i, post_one(gw, i, "frz")))
                  for i in range(2)]
            for t in ts:
                t.start()
            hqtest.wait_for(lambda: metric_sum(gw, "hookmq_gateway_in_flight") == 2, 10,
                            what="both requests admitted")
            d, st, h = post_one(gw, 99, "frz-over")
            self.assertEqual(st, 503, "beyond max_in_flight")
            self.assertIn("retry-after", h)
            for t in ts:
                t.join(timeout=30)
            self.assertEqual([res[i][1] for i in range(2)], [202, 202], "spooled after the confirm timeout")
        finally:
            os.kill(pid, signal.SIGCONT)
        try:
            hqtest.wait_for(lambda: "hookmq_gateway_spool_events 0" in gw.metrics(), 60,
                            what="spool drained")
            dups = audit(self, [res[i][0] for i in range(2)])
            self.assertLessEqual(dups, 2)
        finally:
            self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
