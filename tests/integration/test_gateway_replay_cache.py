"""The gateway's replay cache (issue 11 item 6, docs/signatures.md "Replay cache"): a provider's
new delivery of an identical body is published, a redelivery of the same delivery is a replay,
and concurrent copies of one captured request are published once."""
import json
import random
import socket
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "rc%d" % random.randint(1000, 9999)
QUEUE = "test.rcache.%s" % P
TW_URL = "https://hooks.example.com/webhooks/%s-tw" % P

SOURCES = """
  { name = "%(p)s-gh"; scheme = "github"; secrets = [ "%(gh)s" ]; replay_cache_bytes = 65536; },
  { name = "%(p)s-shop"; scheme = "shopify"; secrets = [ "%(sh)s" ]; },
  { name = "%(p)s-tw"; scheme = "twilio"; secrets = [ "%(tw)s" ]; url = "%(url)s"; },
  { name = "%(p)s-tok"; scheme = "token"; secrets = [ "%(tok)s" ]; }
""" % {"p": P, "gh": SECRETS["github"], "sh": SECRETS["shopify"], "tw": SECRETS["twilio"],
       "tok": SECRETS["token"], "url": TW_URL}


def raw_post(port, path, body, headers):
    """An HTTP/1.1 request on a connection opened beforehand, sent in one write."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\nConnection: close\r\n" % (
        path, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    return s, head.encode() + body


def read_response(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


class ReplayCache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(SOURCES)
        cls.gw.apply()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s.#" % n for n in ("%s-gh" % P, "%s-shop" % P,
                                                          "%s-tw" % P, "%s-tok" % P)])
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        hqtest.delete_queue(QUEUE)
        assert rc == 0, "gateway exit code %r" % rc

    def setUp(self):
        hqtest.purge(QUEUE)

    def post(self, src, body, headers):
        st, _, b = self.gw.post("%s-%s" % (P, src), body, headers)
        return st, json.loads(b) if b else {}

    def queued(self, n):
        """Wait for n messages; every 202 above was confirmed, so none can arrive later."""
        got = []
        hqtest.wait_for(lambda: got.extend(hqtest.get_messages(QUEUE)) or len(got) >= n,
                        what="%d messages" % n)
        got.extend(hqtest.get_messages(QUEUE))
        return got

    def test_new_delivery_of_identical_body_is_published(self):
        body = b'{"zen":"heartbeat"}'
        for src, sign, hdr in (("gh", lambda d: hqtest.sign_github(SECRETS["github"], body,
                                                                    delivery=d),
                                "X-GitHub-Delivery"),
                               ("shop", lambda d: hqtest.sign_shopify(SECRETS["shopify"], body,
                                                                      wid=d),
                                "X-Shopify-Webhook-Id")):
            with self.subTest(src=src):
                d1, d2 = "%s-a-%d" % (P, time.time_ns()), "%s-b-%d" % (P, time.time_ns())
                st1, b1 = self.post(src, body, sign(d1))
                st2, b2 = self.post(src, body, sign(d2))  # same body and MAC, new delivery
                st3, b3 = self.post(src, body, sign(d1))  # the provider redelivers d1
                self.assertEqual((st1, st2, st3), (202, 202, 202))
                self.assertEqual((b1["id"], b2["id"], b3["id"]), (d1, d2, d1))
                self.assertNotIn("reason", b2)
                msgs = self.queued(2)
                self.assertEqual(sorted(m["properties"]["message_id"] for m in msgs),
                                 sorted([d1, d2]), hdr)

    def test_twilio_idempotency_token(self):
        params = {"CallSid": "CA1", "CallStatus": "ringing"}
        body, h = hqtest.sign_twilio_form(SECRETS["twilio"], TW_URL, params)
        t1, t2 = dict(h), dict(h)
        t1["I-Twilio-Idempotency-Token"] = "tok-a-%s" % P
        t2["I-Twilio-Idempotency-Token"] = "tok-b-%s" % P
        self.assertEqual(self.post("tw", body, t1)[0], 202)
        self.assertEqual(self.post("tw", body, t2)[0], 202)  # a new delivery
        self.assertEqual(self.post("tw", body, t1)[0], 202)  # Twilio's retry of the first
        self.assertEqual(len(self.queued(2)), 2)

    def test_no_delivery_id_keeps_the_exact_replay_rule(self):
        body = b'{"n":"%d"}' % time.time_ns()
        h = {"Authorization": "Bearer " + SECRETS["token"], "Content-Type": "application/json"}
        st1, b1 = self.post("tok", body, h)
        st2, b2 = self.post("tok", body, h)
        self.assertEqual((st1, st2), (202, 202))
        self.assertEqual(b1["id"], b2["id"])
        self.assertEqual(len(self.queued(1)), 1)

    def test_concurrent_copies_are_published_once(self):
        n = 16
        for rnd in range(3):
            body = b'{"round":%d,"n":%d}' % (rnd, time.time_ns())
            h = hqtest.sign_github(SECRETS["github"], body, delivery="%s-c%d" % (P, rnd))
            conns = [raw_post(self.gw.port, "/webhooks/%s-gh" % P, body, h) for _ in range(n)]
            for s, data in conns:  # all copies in flight together
                s.sendall(data)
            res = [read_response(s) for s, _ in conns]
            self.assertEqual([st for st, _ in res], [202] * n, res)
            self.assertEqual({json.loads(b)["id"] for _, b in res}, {"%s-c%d" % (P, rnd)})
            msgs = self.queued(1)
            self.assertEqual(len(msgs), 1, "round %d: %d copies published" % (rnd, len(msgs)))
            hqtest.purge(QUEUE)


class FailedFirstAttempt(unittest.TestCase):
    def test_failed_publish_leaves_no_mark(self):
        """No broker, no spool: every attempt is 503 not_durable. A retry of the same request,
        alone or with concurrent copies, is attempted again: never a replay, never stuck on an
        in-flight mark left by the failed attempt."""
        dead = "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()
        gw = Gateway(SOURCES, uris=[dead], spool=False, confirm_timeout_ms=300)
        gw.start()
        try:
            body = b'{"n":%d}' % time.time_ns()
            h = hqtest.sign_github(SECRETS["github"], body, delivery="%s-fail" % P)
            for attempt in range(3):
                st, _, b = gw.post("%s-gh" % P, body, h)
                self.assertEqual((st, json.loads(b).get("reason")), (503, "not_durable"),
                                 "attempt %d" % attempt)
            conns = [raw_post(gw.port, "/webhooks/%s-gh" % P, body, h) for _ in range(4)]
            for s, data in conns:
                s.sendall(data)
            res = [read_response(s) for s, _ in conns]
            self.assertEqual([(st, json.loads(b).get("reason")) for st, b in res],
                             [(503, "not_durable")] * 4)
            self.assertNotIn("hookmq_gateway_replay_cache_hits_total 1", gw.metrics())
        finally:
            self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main()
