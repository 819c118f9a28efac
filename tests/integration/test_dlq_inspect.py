"""Inspecting a DLQ never loses, reorders or changes a message, however often it runs.

RabbitMQ 4 gives every quorum queue a default delivery limit of 20 and counts each message
that a reader returns (basic.nack with requeue, or a closed channel) as a delivery, so a DLQ
read 21 times by `hookmq-dlx list` would drop everything in it. On each broker version the
suite runs against (HQ_BROKER_VERSION), this parks 50 events in a DLQ declared by
`hookmq-dlx apply`, runs `list`, `show` and `status` 25 times each (five more than the
limit), lets the worker's automatic redrive scan read the DLQ at least 25 times with
nothing due (every event was already redriven max_times), and then takes the DLQ apart: the same 50 messages, in order,
with byte-identical bodies and the same properties and headers. The only header allowed to
appear is x-delivery-count, which RabbitMQ 4 adds to a message that was returned."""
import json
import os
import random
import subprocess
import unittest

import hqtest
import wkfixture

N_EVENTS = 50
ROUNDS = 25  # > RabbitMQ 4's default delivery limit of 20
SCANS = 25


def dlx(*args):
    return subprocess.run([hqtest.binary("hookmq-dlx")] + list(args), capture_output=True,
                          text=True, timeout=120)


class DlqInspectTest(unittest.TestCase):
    def setUp(self):
        self.s = wkfixture.Setup("insp")
        # redrive scans the DLQ every second (after/4, at least 1 s); max_times = 1 and every
        # parked event already has hookmq-redriven = 1, so nothing is ever due
        self.c = self.s.consumer("c", "log", extra='redrive = { after = "1s"; max_times = 1; };')
        self.s.apply()
        self.addCleanup(self.s.cleanup)
        self.sent = []
        rng = random.Random(7)
        for i in range(N_EVENTS):
            mid = "evt_insp_%03d" % i
            if i % 5 == 0:  # some bodies are not UTF-8 at all
                body = bytes(rng.randrange(256) for _ in range(64 + i))
            else:
                body = json.dumps({"id": mid, "n": i, "pad": "x" * i}).encode()
            headers = {"hookmq-source": "stripe", "hookmq-event-type": "invoice.paid",
                       "hookmq-received-at": 1700000000000 + i, "hookmq-scheme": "stripe",
                       "hookmq-attempt": 3, "hookmq-consumer": self.c.name,
                       "hookmq-attempts": 3, "hookmq-last-error": "exit 1: boom %d" % i,
                       "hookmq-failed-at": 1700000100000 + i, "hookmq-redriven": 1}
            props = {"message_id": mid, "content_type": "application/json", "delivery_mode": 2,
                     "timestamp": 1700000000, "headers": headers}
            self.assertTrue(hqtest.publish_via_api(self.c.dlq, body, props))
            self.sent.append((mid, body, headers))
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == N_EVENTS, 30,
                        what="%d parked events" % N_EVENTS)

    def run_ok(self, *args):
        r = dlx(*args)
        self.assertEqual(r.returncode, 0, "%s -> %d\n%s%s" % (args, r.returncode, r.stdout,
                                                             r.stderr))
        return r

    def test_inspecting_loses_nothing(self):
        conf = self.s.config
        ids = [mid for mid, _, _ in self.sent]
        for n in range(ROUNDS):
            r = self.run_ok("list", self.c.name, "-c", conf, "--json")
            got = [json.loads(line)["id"] for line in r.stdout.splitlines() if line.strip()]
            self.assertEqual(got, ids, "list round %d" % n)
            mid = ids[n % N_EVENTS]
            r = self.run_ok("show", self.c.name, mid, "-c", conf, "--json")
            self.assertEqual(json.loads(r.stdout)["id"], mid, "show round %d" % n)
            r = dlx("status", "-c", conf)
            self.assertIn(self.c.dlq, r.stdout, "status round %d: %s" % (n, r.stderr))
            self.assertRegex(r.stdout, r"%s +\S+ +%d " % (self.c.dlq.replace(".", r"\."),
                                                          N_EVENTS))

        w = self.s.worker(self.c)
        try:
            hqtest.wait_for(lambda: w.metric("hookmq_worker_redrive_scans_total") >= SCANS,
                            SCANS * 4 + 30, interval=0.5,
                            what="%d redrive scans of the DLQ" % SCANS)
            self.assertEqual(w.metric("hookmq_worker_redriven_total"), 0)
        finally:
            self.assertEqual(w.stop(), 0, w.output())

        got = hqtest.get_messages(self.c.dlq)
        self.assertEqual([m["properties"]["message_id"] for m in got], ids)
        for m, (mid, body, headers) in zip(got, self.sent):
            self.assertEqual(m["body"], body, mid)
            h = dict(m["properties"]["headers"])
            h.pop("x-delivery-count", None)  # RabbitMQ 4 counts the returns; nothing else
            self.assertEqual(h, headers, mid)
            self.assertEqual(m["properties"]["content_type"], "application/json")
            self.assertEqual(m["properties"]["delivery_mode"], 2)
            self.assertEqual(m["properties"]["timestamp"], 1700000000)
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == 0, 30,
                        what="the DLQ to be empty after taking the %d events" % N_EVENTS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
