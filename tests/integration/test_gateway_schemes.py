"""Every scheme end to end: a correctly signed request gives 202 and exactly one message with
docs/message-format.md's properties and headers in a bound queue; a wrongly signed one gives 401
and no message."""
import base64
import json
import random
import time
import unittest
import urllib.parse

import hqtest
from gwfixture import Gateway, SECRETS, messages_through_marker, public_url, sources_block

P = "sc%d" % random.randint(1000, 9999)
QUEUE = "test.schemes.%s" % P


def signed(scheme, port):
    """(body, headers, expected type, expected id or None) for a fresh event."""
    n = time.time_ns()
    s = SECRETS.get(scheme)
    if scheme == "github":
        body = json.dumps({"ref": "refs/heads/main", "n": n}).encode()
        return body, hqtest.sign_github(s, body, "push", "gh-%d" % n), "push", "gh-%d" % n
    if scheme == "stripe":
        body = json.dumps({"id": "evt_%d" % n, "type": "invoice.payment_failed"}).encode()
        return body, hqtest.sign_stripe(s, body), "invoice.payment_failed", "evt_%d" % n
    if scheme == "standard":
        body = json.dumps({"type": "user.created", "n": n}).encode()
        return body, hqtest.sign_standard(s, body, "msg_%d" % n), "user.created", "msg_%d" % n
    if scheme == "shopify":
        body = json.dumps({"id": n, "total": "1.00"}).encode()
        return body, hqtest.sign_shopify(s, body, "orders/create", "w-%d" % n), "orders/create", "w-%d" % n
    if scheme == "slack":
        body = json.dumps({"type": "event_callback", "event_id": "Ev%d" % n,
                           "event": {"type": "app_mention", "text": "hi"}}).encode()
        return body, hqtest.sign_slack(s, body), "app_mention", "Ev%d" % n
    if scheme == "gitlab":
        body = json.dumps({"object_kind": "push", "n": n}).encode()
        return body, hqtest.sign_gitlab(s, "Push Hook", "u-%d" % n), "Push Hook", "u-%d" % n
    if scheme == "twilio":
        url = public_url(P, "twilio")
        body, h = hqtest.sign_twilio_form(s, url, {"CallSid": "CA%d" % n, "From": "+15550001"})
        h["Host"] = "127.0.0.1:%d" % port
        return body, h, "event", None
    if scheme == "paddle":
        body = json.dumps({"event_id": "evt_p%d" % n, "event_type": "transaction.completed"}).encode()
        return body, hqtest.sign_paddle(s, body), "transaction.completed", "evt_p%d" % n
    if scheme == "square":
        url = public_url(P, "square")
        body = json.dumps({"type": "payment.created", "event_id": "sq-%d" % n}).encode()
        h = hqtest.sign_square(s, url, body)
        h["Host"] = "127.0.0.1:%d" % port
        return body, h, "payment.created", "sq-%d" % n
    if scheme == "zoom":
        body = json.dumps({"event": "meeting.started", "payload": {"n": n}}).encode()
        return body, hqtest.sign_zoom(s, body), "meeting.started", None
    if scheme == "mailgun":
        body = hqtest.mailgun_body(s, "delivered", "mg-%d" % n)
        return body, {"Content-Type": "application/json"}, "delivered", "mg-%d" % n
    if scheme == "linear":
        body = json.dumps({"action": "create", "type": "Issue", "data": {"n": n},
                           "webhookTimestamp": int(time.time() * 1000)}).encode()
        return body, hqtest.sign_linear(s, body, "ld-%d" % n), "Issue", "ld-%d" % n
    if scheme == "hmac":
        body = json.dumps({"n": n}).encode()
        return body, hqtest.sign_hmac(s, body), "event", None
    if scheme == "token":
        body = json.dumps({"n": n}).encode()
        return body, {"Authorization": "Bearer " + s, "Content-Type": "application/json"}, "event", None
    if scheme == "basic":
        body = json.dumps({"n": n}).encode()
        return body, {"Authorization": "Basic " + base64.b64encode(s.encode()).decode(),
                      "Content-Type": "application/json"}, "event", None
    if scheme == "none":
        body = json.dumps({"n": n}).encode()
        return body, {"Content-Type": "application/json"}, "event", None
    raise ValueError(scheme)


class Schemes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(sources_block(P))
        cls.gw.apply()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s-%s.#" % (P, s) for s in list(SECRETS) + ["none"]])
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        hqtest.delete_queue(QUEUE)
        assert rc == 0, "gateway exit code %r" % rc

    def test_every_scheme(self):
        for scheme in list(SECRETS) + ["none"]:
            with self.subTest(scheme=scheme):
                hqtest.purge(QUEUE)
                src = "%s-%s" % (P, scheme)
                body, headers, etype, eid = signed(scheme, self.gw.port)
                st, rh, rb = self.gw.post(src, body, headers)
                self.assertEqual(st, 202, rb)
                answer = json.loads(rb)
                if eid:
                    self.assertEqual(answer["id"], eid)
                msgs = hqtest.wait_for(lambda: hqtest.get_messages(QUEUE), 10, what="message")
                self.assertEqual(len(msgs), 1)
                m = msgs[0]
                props = m["properties"]
                h = props["headers"]
                self.assertEqual(m["body"], body, "body must be the raw bytes")
                self.assertEqual(props["message_id"], answer["id"])
                self.assertEqual(props["delivery_mode"], 2)
                self.assertAlmostEqual(props["timestamp"], time.time(), delta=60)
                self.assertEqual(props.get("content_type"), headers.get("Content-Type"))
                self.assertEqual(h["hookmq-source"], src)
                self.assertEqual(h["hookmq-event-type"], etype)
                self.assertEqual(h["hookmq-scheme"], scheme)
                self.assertIsInstance(h["hookmq-received-at"], int)
                self.assertAlmostEqual(h["hookmq-received-at"] / 1000, time.time(), delta=60)
                norm = etype.lower().replace("/", ".").replace(" ", "_")
                self.assertEqual(m["routing_key"], "%s.%s" % (src, norm))
                for k in h:
                    self.assertNotIn(k, ("http-authorization", "http-x-gitlab-token", "http-cookie"))
                    if isinstance(h[k], str):
                        self.assertNotIn(SECRETS.get(scheme, "\0"), h[k], "secret leaked in " + k)
                if scheme == "github":
                    self.assertEqual(h["http-x-github-event"], "push")
                    self.assertIn("http-x-hub-signature-256", h)
                if scheme == "shopify":
                    self.assertEqual(h["http-x-shopify-topic"], "orders/create")

    def test_wrong_secret_is_401_and_publishes_nothing(self):
        for scheme in SECRETS:
            with self.subTest(scheme=scheme):
                hqtest.purge(QUEUE)
                saved = SECRETS[scheme]
                SECRETS[scheme] = {"standard": "whsec_" + base64.b64encode(b"x" * 24).decode(),
                                   "basic": "user:wrong"}.get(scheme, "wrong-" + saved)
                try:
                    body, headers, _, _ = signed(scheme, self.gw.port)
                finally:
                    SECRETS[scheme] = saved
                st, _, rb = self.gw.post("%s-%s" % (P, scheme), body, headers)
                self.assertEqual(st, 401, rb)
                r = json.loads(rb)
                self.assertEqual(r["error"], "unauthorized")
                self.assertTrue(r["reason"])
                self.assertNotIn(saved.encode(), rb)
        # nothing ahead of the marker: no wrongly signed request published anything
        got, did = messages_through_marker(self.gw, "%s-github" % P, SECRETS["github"], QUEUE)
        self.assertEqual(got, [did])


if __name__ == "__main__":
    unittest.main(verbosity=2)
