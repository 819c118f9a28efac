"""Where a request's time goes (docs/performance.md, "Where 128 connections wait"): the stage
histograms and the publisher's batch and confirm counters on /metrics."""
import json
import random
import re
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "st%d" % random.randint(1000, 9999)
QUEUE = "test.stages.%s" % P
GH = SECRETS["github"]
STAGES = ("prepare", "handoff", "send", "confirm", "wake")


def metric_value(text, name):
    """The value of the sample `name` (name with its labels, exactly), or None."""
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class Stages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway('  { name = "%s-gh"; scheme = "github"; secrets = [ "%s" ]; }' % (P, GH))
        cls.gw.apply()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s-gh.#" % P])
        cls.gw.start()
        hqtest.wait_for(lambda: hqtest.http_request(cls.gw.port, "GET", "/readyz")[0] == 200, 20,
                        what="the gateway's publisher connection")

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        hqtest.delete_queue(QUEUE)
        assert rc == 0, "gateway exit code %r" % rc

    def post(self):
        body = json.dumps({"n": time.time_ns()}).encode()
        st, _, b = self.gw.post("%s-gh" % P, body,
                                hqtest.sign_github(GH, body, "push", "d-%d" % time.time_ns()))
        self.assertEqual(st, 202, b)

    def test_every_confirmed_request_is_timed_in_each_stage(self):
        before = self.gw.metrics()
        n0 = {s: metric_value(before, 'hookmq_gateway_request_stage_seconds_count{stage="%s"}' % s)
              or 0 for s in STAGES}
        b0 = metric_value(before, "hookmq_gateway_publish_batch_size_count") or 0
        batches0 = metric_value(before, "hookmq_gateway_publish_batches_total") or 0
        frames0 = metric_value(before, "hookmq_gateway_confirm_frames_total") or 0
        for _ in range(5):
            self.post()
        m = self.gw.metrics()
        for s in STAGES:
            with self.subTest(stage=s):
                count = metric_value(m, 'hookmq_gateway_request_stage_seconds_count{stage="%s"}' % s)
                total = metric_value(m, 'hookmq_gateway_request_stage_seconds_sum{stage="%s"}' % s)
                self.assertEqual(count - n0[s], 5)
                self.assertGreaterEqual(total, 0)
                self.assertIn('hookmq_gateway_request_stage_seconds_bucket{stage="%s",le="0.0001"}'
                              % s, m)
        # one request at a time: each went out in a batch of its own and was settled by its ack
        self.assertEqual(metric_value(m, "hookmq_gateway_publish_batch_size_count") - b0, 5)
        self.assertEqual(metric_value(m, 'hookmq_gateway_publish_batch_size_bucket{le="1"}') -
                         (metric_value(before, 'hookmq_gateway_publish_batch_size_bucket{le="1"}')
                          or 0), 5)
        self.assertEqual(metric_value(m, "hookmq_gateway_publish_batches_total") - batches0, 5)
        self.assertEqual(metric_value(m, "hookmq_gateway_confirm_frames_total") - frames0, 5)


if __name__ == "__main__":
    unittest.main()
