"""Spool records the broker will never take (docs/deploy.md#the-spool, docs/reliability.md).

- A record nacked on every try (reject-publish on a full queue) no longer blocks the drainer:
  the other records of its segment are confirmed once each (no republishing), and after
  SPOOL_MAX_REFUSALS refusals it is set aside in the quarantine, where --spool-quarantine lists
  it and the quarantine metrics count it.
- A message larger than the broker's max_message_size is answered 503 and never spooled; one
  already in the spool goes to the quarantine at once."""
import collections
import json
import os
import random
import re
import subprocess
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "sp%d" % random.randint(1000, 9999)
GOODQ = "test.spoolpoison.%s.good" % P
FULLQ = "test.spoolpoison.%s.full" % P
GH = SECRETS["github"]
SOURCES = '  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; }' % (P, GH)
DEAD = "amqp://guest:guest@127.0.0.1:%d/%%2f"


def post(gw, event, delivery, size=100):
    body = json.dumps({"id": delivery, "pad": "x" * size}).encode()
    st, _, _ = gw.post(P, body, hqtest.sign_github(GH, body, event, delivery))
    return st


def metric(gw, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), gw.metrics(), re.M)
    return int(m.group(1)) if m else None


def spool_cli(gw, flag):
    r = subprocess.run([hqtest.binary("hookmq-gateway"), "-c", gw.config, flag],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def delivered(queue):
    return collections.Counter(m["properties"]["message_id"] for m in hqtest.get_messages(queue))


def spool_while_down(n_good, poison):
    """A gateway without a broker spools poison (event type, id, size) and n_good pushes."""
    gw = Gateway(SOURCES, uris=[DEAD % hqtest.free_port()], confirm_timeout_ms=300)
    gw.start()
    ids = []
    try:
        ev, pid, size = poison
        assert post(gw, ev, pid, size) == 202
        for i in range(n_good):
            d = "%s-good-%s-%d" % (P, pid, i)
            assert post(gw, "push", d) == 202
            ids.append(d)
        assert metric(gw, "hookmq_gateway_spool_events") == n_good + 1
    finally:
        assert gw.stop() == 0
    return gw, ids


def broker_env(key, value=None):
    """Read (value None) or set the node's rabbit application env key (4.0 also caches it in
    a persistent_term of the same name, read by new channels)."""
    if value is None:
        return hqtest.broker("ctl", "eval", "application:get_env(rabbit, %s)." % key).stdout
    hqtest.broker("ctl", "eval", "application:set_env(rabbit, %s, %s), "
                  "persistent_term:put(%s, %s)." % (key, value, key, value))


class SpoolPoison(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hqtest.ensure_topology()
        for q in (GOODQ, FULLQ):
            hqtest.delete_queue(q)
        hqtest.declare_queue(GOODQ, ["%s.push" % P])
        hqtest.declare_queue(FULLQ, ["%s.poison" % P],
                             arguments={"x-max-length": 1, "x-overflow": "reject-publish"})

    @classmethod
    def tearDownClass(cls):
        for q in (GOODQ, FULLQ):
            hqtest.delete_queue(q)

    def setUp(self):
        hqtest.purge(GOODQ)
        hqtest.purge(FULLQ)

    def test_nacked_record_is_quarantined_and_blocks_nothing(self):
        # the full queue: one message in it, reject-publish for every other
        hqtest.publish_via_api("%s.poison" % P, b"filler", exchange="hookmq.events")
        hqtest.wait_for(lambda: hqtest.queue_depth(FULLQ) == 1, 30, what="full queue")
        poison = "%s-poison-1" % P
        gw1, good = spool_while_down(20, ("poison", poison, 100))

        gw = Gateway(SOURCES, workdir=gw1.workdir)
        gw.start()
        try:
            hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_spool_quarantine_records") == 1,
                            90, what="the nacked record in the quarantine")
            hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_spool_events") == 0, 30,
                            what="spool drained")
            self.assertEqual(metric(gw, "hookmq_gateway_spool_quarantined_total"), 1)
            self.assertEqual(metric(gw, "hookmq_gateway_spool_drained_total"), 20)
            seen = delivered(GOODQ)
            # every good record once: its segment was not republished on every nack
            self.assertEqual(set(seen), set(good))
            self.assertEqual(max(seen.values()), 1, "republished: %s" % seen.most_common(3))
            rc, out, err = spool_cli(gw, "--spool-quarantine")
            self.assertEqual(rc, 0, err)
            self.assertIn(poison, out)
            self.assertIn("%s.poison" % P, out)
            self.assertIn("1 records", err)
            rc, out, err = spool_cli(gw, "--spool-list")
            self.assertEqual((rc, out), (0, ""), err)
            self.assertEqual(hqtest.queue_depth(FULLQ), 1)
            # the operator retries: refused while the gateway runs
            rc, _, err = spool_cli(gw, "--spool-retry-quarantine")
            self.assertEqual(rc, 1)
            self.assertIn("stop it first", err)
        finally:
            self.assertEqual(gw.stop(), 0)
        # the queue has room again; retried with the gateway stopped, the record goes through
        hqtest.purge(FULLQ)
        rc, _, err = spool_cli(gw, "--spool-retry-quarantine")
        self.assertEqual(rc, 0, err)
        self.assertIn("1 records given back", err)
        gw = Gateway(SOURCES, workdir=gw1.workdir)
        gw.start()
        try:
            hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_spool_events") == 0, 30,
                            what="retried record drained")
            self.assertEqual(metric(gw, "hookmq_gateway_spool_quarantine_records"), 0)
            self.assertEqual(list(delivered(FULLQ)), [poison])
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_message_larger_than_the_broker_takes(self):
        before = broker_env("max_message_size")
        m = re.search(r"\{ok,\s*(\d+)\}", before)
        self.assertIsNotNone(m, before)
        gw1, good = spool_while_down(5, ("push", "%s-big-spooled" % P, 20000))
        broker_env("max_message_size", 8192)
        try:
            gw = Gateway(SOURCES, workdir=gw1.workdir)
            gw.start()
            try:
                hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_spool_quarantine_records") == 1,
                                60, what="the oversized record in the quarantine")
                hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_spool_events") == 0, 30,
                                what="spool drained")
                # on the request path: 503, not spooled; small events still 202
                self.assertEqual(post(gw, "push", "%s-big-direct" % P, 20000), 503)
                self.assertEqual(post(gw, "push", "%s-small-direct" % P), 202)
                self.assertEqual(metric(gw, "hookmq_gateway_spooled_total"), 0)
                self.assertEqual(metric(gw, "hookmq_gateway_spool_events"), 0)
                seen = delivered(GOODQ)
                self.assertEqual(set(seen), set(good) | {"%s-small-direct" % P})
                rc, out, _ = spool_cli(gw, "--spool-quarantine")
                self.assertIn("%s-big-spooled" % P, out)
            finally:
                self.assertEqual(gw.stop(), 0)
            # a fresh gateway (nothing learnt yet): the first oversized request is 503 too
            gw = Gateway(SOURCES)
            gw.start()
            try:
                # with the broker connected (before that, any event is spooled: 202)
                hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_broker_connected") == 1, 60,
                                what="the fresh gateway's publisher connected")
                self.assertEqual(post(gw, "push", "%s-big-fresh" % P, 20000), 503)
                self.assertEqual(post(gw, "push", "%s-small-fresh" % P), 202)
                self.assertEqual(metric(gw, "hookmq_gateway_spooled_total"), 0)
            finally:
                self.assertEqual(gw.stop(), 0)
        finally:
            broker_env("max_message_size", m.group(1))

    def test_missing_exchange_keeps_records_waiting(self):
        """A channel closed because the exchange is missing (topology lost) is nothing wrong
        with the records: they wait in the spool however long it takes, and are not counted as
        refusals nor quarantined."""
        x = "test.spoolpoison.%s.x" % P
        xq = "test.spoolpoison.%s.xq" % P
        hqtest.mgmt("PUT", "/exchanges/%2f/" + hqtest.q(x), {"type": "topic", "durable": True})
        hqtest.declare_queue(xq, ["%s.#" % P], exchange=x)
        gw = Gateway(SOURCES)
        with open(gw.config) as f:
            text = f.read()
        text = text.replace('exchange = "hookmq.events";', 'exchange = "%s";' % x)
        text = text.replace('level = "info"', 'level = "debug"')
        with open(gw.config, "w") as f:
            f.write(text)
        gw.start()
        try:
            self.assertEqual(post(gw, "push", "%s-x-0" % P), 202)
            hqtest.delete_exchange(x)
            ids = ["%s-x-%d" % (P, i) for i in range(1, 4)]
            for d in ids:
                self.assertEqual(post(gw, "push", d), 202)
            self.assertEqual(metric(gw, "hookmq_gateway_spool_events"), 3)
            # well past SPOOL_MAX_REFUSALS passes over the segment
            hqtest.wait_for(lambda: gw.proc.output().count("spool: republish failed") >= 36, 60,
                            what="the drainer retrying")
            self.assertEqual(metric(gw, "hookmq_gateway_spool_quarantine_records"), 0)
            self.assertEqual(metric(gw, "hookmq_gateway_spool_events"), 3)
            # the topology is back: the records go through
            hqtest.mgmt("PUT", "/exchanges/%2f/" + hqtest.q(x), {"type": "topic", "durable": True})
            hqtest.declare_queue(xq, ["%s.#" % P], exchange=x)
            hqtest.wait_for(lambda: metric(gw, "hookmq_gateway_spool_events") == 0, 30,
                            what="spool drained")
            self.assertEqual(set(delivered(xq)), set(ids) | {"%s-x-0" % P})
        finally:
            self.assertEqual(gw.stop(), 0)
            hqtest.delete_queue(xq)
            hqtest.delete_exchange(x)


if __name__ == "__main__":
    unittest.main(verbosity=2)
