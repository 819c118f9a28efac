"""hookmq-dlx list / show / redrive / purge / status against the test broker.

The DLQs are filled with crafted DLQ copies (what the worker publishes: hookmq-consumer,
-attempts, -last-error, -failed-at) through the management API after `hookmq-dlx apply`, plus
messages the broker dead-lettered itself (an x-death header, and a real rejection from the
work queue). Checked: list shows every message in order and consumes nothing; show prints
headers and body; redrive --id / --type / --all / --limit / --dry-run move exactly the right
messages to hookmq.NAME with hookmq-attempt = 1, hookmq-redriven + 1 and without the failure
and broker-owned headers, leaving the rest in order; purge needs --yes; status shows depths,
the oldest DLQ message's age, missing queues and drift (exit 3 naming x-message-ttl).
Names are unique per run so the test can share the broker."""
import base64
import json
import os
import random
import subprocess
import tempfile
import time
import unittest

import hqtest

P = "dlq%d" % random.randint(1000, 9999)
EXCHANGE = "hookmq.%s.events" % P
C1 = "%sbill" % P
C2 = "%scrm" % P
C3 = "%sdrift" % P   # only in the drift config
NOW_MS = int(time.time() * 1000)
FAILURE_HEADERS = ("hookmq-consumer", "hookmq-attempts", "hookmq-last-error", "hookmq-failed-at")


def config(consumers):
    lines = ['broker = {',
             '  uris = [ "%s" ];' % hqtest.AMQP_URI,
             '  exchange = "%s";' % EXCHANGE,
             '  heartbeat_s = 10;',
             '};',
             'consumers = (']
    for i, (name, delays) in enumerate(consumers):
        lines.append('  { name = "%s"; bindings = [ "%s.#" ]; handler = "log";' % (name, name))
        lines.append('    retry = { delays = [ %s ]; max_attempts = 3; }; }%s' %
                     (", ".join('"%s"' % d for d in delays), "," if i + 1 < len(consumers) else ""))
    lines.append(');')
    return "\n".join(lines) + "\n"


def queues_of(name, delays):
    return ["hookmq." + name] + ["hookmq.%s.retry.%s" % (name, d) for d in delays] + \
           ["hookmq.%s.dlq" % name]


def dlq(name):
    return "hookmq.%s.dlq" % name


def publish_dlq_copy(consumer, mid, etype, attempts=3, error="exit 1: boom", failed_at=None,
                     redriven=None, body=None, extra=None):
    headers = {"hookmq-source": "stripe", "hookmq-event-type": etype,
               "hookmq-received-at": NOW_MS - 3600000, "hookmq-scheme": "stripe",
               "http-stripe-signature": "t=1,v1=abc", "hookmq-attempt": attempts,
               "hookmq-consumer": consumer, "hookmq-attempts": attempts,
               "hookmq-last-error": error,
               "hookmq-failed-at": failed_at if failed_at is not None else NOW_MS - 60000}
    if redriven is not None:
        headers["hookmq-redriven"] = redriven
    headers.update(extra or {})
    props = {"message_id": mid, "content_type": "application/json", "delivery_mode": 2,
             "timestamp": NOW_MS // 1000 - 3600, "headers": headers}
    body = body if body is not None else json.dumps({"id": mid, "type": etype}).encode()
    assert hqtest.publish_via_api(dlq(consumer), body, props), "not routed to " + dlq(consumer)


def dlx(*args, timeout=120):
    return subprocess.run([hqtest.binary("hookmq-dlx")] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def depth_is(queue, n):
    hqtest.wait_for(lambda: hqtest.queue_depth(queue) == n, 30,
                    what="%s to hold %d messages (has %s)" % (queue, n, hqtest.queue_depth(queue)))


class DlqTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hq-dlq-")
        cls.consumers = [(C1, ["200ms", "1s"]), (C2, ["1s"])]
        cls.conf = hqtest.write_config(os.path.join(cls.dir, "hookmq.conf"), config(cls.consumers))
        cls.created = set()
        for name, delays in cls.consumers:
            cls.created.update(queues_of(name, delays))
        hqtest.run_dlx_apply(cls.conf)

    @classmethod
    def tearDownClass(cls):
        for q in sorted(cls.created):
            hqtest.delete_queue(q)
        hqtest.delete_exchange(EXCHANGE)

    def setUp(self):
        for name, delays in self.consumers:
            for q in queues_of(name, delays):
                hqtest.purge(q)
        for name, _ in self.consumers:
            depth_is(dlq(name), 0)
            depth_is("hookmq." + name, 0)

    def run_ok(self, *args):
        r = dlx(*args)
        self.assertEqual(r.returncode, 0, "%s -> %d\n%s%s" % (args, r.returncode, r.stdout, r.stderr))
        return r

    def list_json(self, name):
        r = self.run_ok("list", name, "-c", self.conf, "--json")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def ids(self, name):
        return [m["id"] for m in self.list_json(name)]

    def drain(self, queue):
        """Consume (ack) every message of queue through the API, in order."""
        return hqtest.get_messages(queue)

    def fill(self, specs):
        for mid, etype in specs:
            publish_dlq_copy(C1, mid, etype)
        depth_is(dlq(C1), len(specs))

    # ---------------------------------------------------------------- list

    def test_list_in_order_nothing_consumed(self):
        specs = [("e%02d" % i, ["invoice.paid", "invoice.failed", "customer.created"][i % 3])
                 for i in range(12)]
        for i, (mid, etype) in enumerate(specs):
            publish_dlq_copy(C1, mid, etype, attempts=i + 1, error="exit %d: boom \x1b[31m" % i,
                             failed_at=NOW_MS - 1000 * i, redriven=i % 2)
        depth_is(dlq(C1), 12)
        first = self.list_json(C1)
        self.assertEqual([m["id"] for m in first], [s[0] for s in specs])
        m = first[4]
        self.assertEqual(m["type"], "invoice.failed")
        self.assertEqual(m["source"], "stripe")
        self.assertEqual(m["attempts"], 5)
        self.assertEqual(m["last_error"], "exit 4: boom \x1b[31m")
        self.assertEqual(m["failed_at_ms"], NOW_MS - 4000)
        self.assertTrue(m["failed_at"].endswith("Z") and m["failed_at"][10] == "T", m["failed_at"])
        self.assertEqual(m["redriven"], 0)
        self.assertEqual(first[5]["redriven"], 1)
        self.assertEqual(m["consumer"], C1)
        self.assertEqual(m["dead_lettered_by"], "worker")
        # the table: header, one row per message (in order), a count; no raw escape bytes
        r = self.run_ok("list", C1, "-c", self.conf)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].startswith("ID"), lines[0])
        for col in ("TYPE", "SOURCE", "ATTEMPTS", "FAILED-AT", "REDRIVEN", "LAST-ERROR"):
            self.assertIn(col, lines[0])
        self.assertEqual([l.split()[0] for l in lines[1:13]], [s[0] for s in specs])
        self.assertIn("12 messages in " + dlq(C1), lines[-1])
        self.assertNotIn("\x1b", r.stdout)
        self.assertIn("exit 4: boom ?[31m", r.stdout)
        # nothing consumed, nothing reordered
        depth_is(dlq(C1), 12)
        self.assertEqual(self.list_json(C1), first)
        self.assertEqual(self.ids(C1), [s[0] for s in specs])
        got = self.drain(dlq(C1))
        self.assertEqual([g["properties"]["message_id"] for g in got], [s[0] for s in specs])

    def test_list_many_keeps_order_and_limit(self):
        n = 300
        for i in range(n):
            publish_dlq_copy(C1, "m%04d" % i, "invoice.paid")
        depth_is(dlq(C1), n)
        want = ["m%04d" % i for i in range(n)]
        self.assertEqual(self.ids(C1), want)
        self.assertEqual(self.ids(C1), want)
        r = dlx("list", C1, "-c", self.conf, "--json", "--limit", "10")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([json.loads(l)["id"] for l in r.stdout.splitlines()], want[:10])
        self.assertIn("note", r.stderr)
        depth_is(dlq(C1), n)
        got = self.drain(dlq(C1))
        self.assertEqual([g["properties"]["message_id"] for g in got], want)

    def test_list_empty_and_errors(self):
        r = self.run_ok("list", C2, "-c", self.conf)
        self.assertIn("0 messages in " + dlq(C2), r.stdout)
        r = dlx("list", "nosuch", "-c", self.conf)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown consumer 'nosuch'", r.stderr)
        self.assertIn(C1, r.stderr)
        self.assertIn(C2, r.stderr)
        r = dlx("list", "-c", self.conf)
        self.assertEqual(r.returncode, 2)
        r = dlx("list", C1, "-c", os.path.join(self.dir, "missing.conf"))
        self.assertEqual(r.returncode, 2)
        r = dlx("list", C1, "-c", self.conf, "--yes")
        self.assertEqual(r.returncode, 2)
        for sub in ("list", "show", "redrive", "purge", "status"):
            r = dlx(sub, "--help")
            self.assertEqual(r.returncode, 0, sub)
            self.assertIn("usage: hookmq-dlx " + sub, r.stdout)
        # -c before the subcommand works too
        r = dlx("-c", self.conf, "list", C1)
        self.assertEqual(r.returncode, 0, r.stderr)

    # ---------------------------------------------------------------- show

    def test_show(self):
        self.fill([("a1", "invoice.paid"), ("a2", "invoice.failed"), ("a3", "customer.created")])
        publish_dlq_copy(C1, "bin", "blob", body=b"\xff\xfe\x00binary")
        depth_is(dlq(C1), 4)
        r = self.run_ok("show", C1, "a2", "-c", self.conf)
        out = r.stdout
        self.assertIn("id:             a2", out)
        self.assertIn("content type:   application/json", out)
        self.assertIn('  hookmq-event-type = "invoice.failed"', out)
        self.assertIn('  hookmq-last-error = "exit 1: boom"', out)
        self.assertIn("  hookmq-attempts = 3", out)
        self.assertIn("  hookmq-failed-at = %d (" % (NOW_MS - 60000), out)
        self.assertIn("body (%d bytes, UTF-8):" % len(json.dumps({"id": "a2", "type": "invoice.failed"})), out)
        self.assertIn('{"id": "a2", "type": "invoice.failed"}', out)
        keys = [l.split(" = ")[0].strip() for l in out.split("headers:\n")[1].split("body")[0].splitlines()]
        self.assertEqual(keys, sorted(keys))
        self.assertIn("http-stripe-signature", keys)
        r = self.run_ok("show", C1, "a2", "-c", self.conf, "--json")
        j = json.loads(r.stdout)
        self.assertEqual(j["id"], "a2")
        self.assertEqual(j["headers"]["hookmq-event-type"], "invoice.failed")
        self.assertEqual(j["headers"]["hookmq-attempts"], 3)
        self.assertEqual(json.loads(j["body"]), {"id": "a2", "type": "invoice.failed"})
        r = self.run_ok("show", C1, "bin", "-c", self.conf, "--json")
        j = json.loads(r.stdout)
        self.assertNotIn("body", j)
        self.assertEqual(base64.b64decode(j["body_b64"]), b"\xff\xfe\x00binary")
        r = self.run_ok("show", C1, "bin", "-c", self.conf)
        self.assertIn("base64", r.stdout)
        self.assertIn(base64.b64encode(b"\xff\xfe\x00binary").decode(), r.stdout)
        r = dlx("show", C1, "nope", "-c", self.conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no message with id 'nope'", r.stderr)
        r = dlx("show", C1, "-c", self.conf)
        self.assertEqual(r.returncode, 2)
        depth_is(dlq(C1), 4)
        self.assertEqual(self.ids(C1), ["a1", "a2", "a3", "bin"])

    # ---------------------------------------------------------------- redrive

    def check_redriven(self, msg, mid, redriven):
        p = msg["properties"]
        h = p.get("headers", {})
        self.assertEqual(p["message_id"], mid)
        self.assertEqual(p.get("content_type"), "application/json")
        self.assertEqual(p.get("delivery_mode"), 2)
        self.assertEqual(h.get("hookmq-attempt"), 1)
        self.assertEqual(h.get("hookmq-redriven"), redriven)
        for k in FAILURE_HEADERS:
            self.assertNotIn(k, h)
        for k in h:
            # x-delivery-count is added by the (quorum) work queue on this delivery
            self.assertTrue(not k.startswith("x-") or k == "x-delivery-count",
                            "broker-owned header %s copied" % k)
        self.assertEqual(h.get("hookmq-source"), "stripe")
        self.assertEqual(h.get("http-stripe-signature"), "t=1,v1=abc")
        self.assertEqual(h.get("hookmq-received-at"), NOW_MS - 3600000)
        self.assertEqual(json.loads(msg["body"])["id"], mid)

    def test_redrive_id(self):
        self.fill([("r1", "invoice.paid"), ("r2", "invoice.failed"), ("r3", "invoice.paid"),
                   ("r4", "customer.created"), ("r5", "invoice.paid")])
        r = self.run_ok("redrive", C1, "--id", "r3", "-c", self.conf)
        self.assertIn("redriven 1 of 5 (4 left in %s)" % dlq(C1), r.stdout)
        depth_is("hookmq." + C1, 1)
        depth_is(dlq(C1), 4)
        got = self.drain("hookmq." + C1)
        self.assertEqual(len(got), 1)
        self.check_redriven(got[0], "r3", 1)
        self.assertEqual(self.ids(C1), ["r1", "r2", "r4", "r5"])
        # an id that is not there: nothing happens, exit 0
        r = self.run_ok("redrive", C1, "--id", "zzz", "-c", self.conf)
        self.assertIn("redriven 0 of 4", r.stdout)
        depth_is(dlq(C1), 4)

    def test_redrive_type_dry_run_and_limit(self):
        self.fill([("t1", "invoice.paid"), ("t2", "customer.created"), ("t3", "invoice.failed"),
                   ("t4", "invoice.paid"), ("t5", "charge.refunded")])
        r = self.run_ok("redrive", C1, "--type", "invoice.*", "--dry-run", "-c", self.conf)
        self.assertIn("would redrive t1", r.stdout)
        self.assertIn("would redrive t3", r.stdout)
        self.assertIn("would redrive t4", r.stdout)
        self.assertNotIn("would redrive t2", r.stdout)
        self.assertIn("would redrive 3 of 5", r.stdout)
        # the dry run has exited: nothing can move after it (ids() reads the DLQ itself)
        depth_is(dlq(C1), 5)
        self.assertEqual(hqtest.queue_depth("hookmq." + C1), 0)
        self.assertEqual(self.ids(C1), ["t1", "t2", "t3", "t4", "t5"])
        r = self.run_ok("redrive", C1, "--type", "invoice.*", "--limit", "2", "-c", self.conf)
        self.assertIn("redriven 2 of 5 (3 left in %s)" % dlq(C1), r.stdout)
        depth_is("hookmq." + C1, 2)
        got = self.drain("hookmq." + C1)
        self.assertEqual([g["properties"]["message_id"] for g in got], ["t1", "t3"])
        for g in got:
            self.check_redriven(g, g["properties"]["message_id"], 1)
        self.assertEqual(self.ids(C1), ["t2", "t4", "t5"])
        r = self.run_ok("redrive", C1, "--type", "c?arge.[a-r]*", "-c", self.conf)
        self.assertIn("redriven 1 of 3", r.stdout)
        self.assertEqual(self.ids(C1), ["t2", "t4"])

    def test_redrive_all_counts_redrives(self):
        publish_dlq_copy(C1, "x1", "invoice.paid", redriven=2)
        publish_dlq_copy(C1, "x2", "invoice.paid")
        publish_dlq_copy(C1, "x3", "invoice.paid", extra={
            "x-death": [{"queue": "hookmq." + C1, "reason": "rejected", "count": 1,
                         "time": NOW_MS // 1000, "exchange": "", "routing-keys": ["hookmq." + C1]}],
            "x-first-death-queue": "hookmq." + C1, "x-first-death-reason": "rejected",
            "x-delivery-count": 4})
        depth_is(dlq(C1), 3)
        r = self.run_ok("redrive", C1, "--all", "-c", self.conf)
        self.assertIn("redriven 3 of 3 (0 left in %s)" % dlq(C1), r.stdout)
        depth_is(dlq(C1), 0)
        depth_is("hookmq." + C1, 3)
        got = self.drain("hookmq." + C1)
        self.assertEqual([g["properties"]["message_id"] for g in got], ["x1", "x2", "x3"])
        self.check_redriven(got[0], "x1", 3)
        self.check_redriven(got[1], "x2", 1)
        self.check_redriven(got[2], "x3", 1)

    def test_redrive_usage(self):
        self.fill([("u1", "invoice.paid")])
        for args in (["redrive", C1], ["redrive", C1, "--all", "--id", "u1"],
                     ["redrive", C1, "--all", "--limit", "0"], ["redrive", C1, "--all", "--yes"],
                     ["redrive", "nosuch", "--all"]):
            r = dlx(*(args + ["-c", self.conf]))
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
        depth_is(dlq(C1), 1)

    # ---------------------------------------------------------------- broker dead-lettering

    def test_broker_dead_lettered(self):
        # crafted: what the broker writes after x-delivery-limit deliveries
        publish_dlq_copy(C1, "ok1", "invoice.paid")
        props = {"message_id": "poison", "content_type": "application/json", "delivery_mode": 2,
                 "headers": {"hookmq-source": "stripe", "hookmq-event-type": "invoice.poison",
                             "hookmq-attempt": 1,
                             "x-death": [{"queue": "hookmq." + C1, "reason": "delivery_limit",
                                          "count": 1, "time": NOW_MS // 1000 - 7200,
                                          "exchange": "", "routing-keys": ["hookmq." + C1]}],
                             "x-first-death-queue": "hookmq." + C1,
                             "x-first-death-reason": "delivery_limit",
                             "x-first-death-exchange": ""}}
        self.assertTrue(hqtest.publish_via_api(dlq(C1), b'{"poison":true}', props))
        # real: the work queue dead-letters a rejected message into the DLQ by itself
        self.assertTrue(hqtest.publish_via_api("hookmq." + C1, b'{"real":1}', {
            "message_id": "rejected1", "headers": {"hookmq-event-type": "invoice.real",
                                                   "hookmq-attempt": 2}}))
        depth_is("hookmq." + C1, 1)
        hqtest.mgmt("POST", "/queues/%2f/" + hqtest.q("hookmq." + C1) + "/get",
                    {"count": 1, "ackmode": "reject_requeue_false", "encoding": "auto"}, ok=(200,))
        depth_is(dlq(C1), 3)
        ms = self.list_json(C1)
        self.assertEqual([m["id"] for m in ms], ["ok1", "poison", "rejected1"])
        p = ms[1]
        self.assertEqual(p["dead_lettered_by"], "broker")
        self.assertEqual(p["reason"], "delivery_limit")
        self.assertIsNone(p["consumer"])
        self.assertRegex(p["last_error"], r"^delivery_limit \(handler crashed or timed out \d+ times\)$")
        self.assertGreater(p["attempts"], 1)
        self.assertEqual(p["failed_at_ms"], (NOW_MS // 1000 - 7200) * 1000)
        rj = ms[2]
        self.assertEqual(rj["dead_lettered_by"], "broker")
        self.assertEqual(rj["reason"], "rejected")
        self.assertEqual(rj["attempts"], 2)
        self.assertEqual(rj["last_error"], "rejected in hookmq.%s (1 times)" % C1)
        self.assertGreater(rj["failed_at_ms"], NOW_MS - 600000)
        r = self.run_ok("list", C1, "-c", self.conf)
        self.assertIn("delivery_limit (handler crashed or timed out", r.stdout)
        r = self.run_ok("show", C1, "poison", "-c", self.conf)
        self.assertIn("x-death =", r.stdout)
        self.assertIn("queue hookmq.%s, reason delivery_limit, count 1" % C1, r.stdout)
        r = self.run_ok("redrive", C1, "--id", "poison", "-c", self.conf)
        self.assertIn("redriven 1 of 3", r.stdout)
        got = self.drain_wait("hookmq." + C1, 1)
        h = got[0]["properties"]["headers"]
        self.assertEqual(h.get("hookmq-attempt"), 1)
        self.assertEqual(h.get("hookmq-redriven"), 1)
        self.assertFalse([k for k in h if k.startswith("x-") and k != "x-delivery-count"], h)

    def drain_wait(self, queue, n):
        depth_is(queue, n)
        return self.drain(queue)

    # ---------------------------------------------------------------- purge

    def test_purge(self):
        self.fill([("p1", "a"), ("p2", "b"), ("p3", "c")])
        r = dlx("purge", C1, "-c", self.conf)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yes", r.stderr)
        # the refused purge has exited: nothing can change after it
        depth_is(dlq(C1), 3)
        r = self.run_ok("purge", C1, "--yes", "-c", self.conf)
        self.assertIn("purged 3 messages from " + dlq(C1), r.stdout)
        depth_is(dlq(C1), 0)
        r = self.run_ok("purge", C1, "--yes", "-c", self.conf)
        self.assertIn("purged 0 messages", r.stdout)

    # ---------------------------------------------------------------- status

    def test_status(self):
        publish_dlq_copy(C1, "old", "invoice.paid", failed_at=NOW_MS - (2 * 3600 + 5 * 60) * 1000)
        publish_dlq_copy(C1, "new", "invoice.paid", failed_at=NOW_MS - 1000)
        self.assertTrue(hqtest.publish_via_api("hookmq.%s.retry.1s" % C2, b"{}", {}))
        depth_is(dlq(C1), 2)
        r = self.run_ok("status", "-c", self.conf)
        out = r.stdout
        row = [l for l in out.splitlines() if l.split()[:1] == [dlq(C1)]]
        self.assertEqual(len(row), 1, out)
        self.assertEqual(row[0].split()[1:3], ["dlq", "2"])
        self.assertRegex(row[0], r"oldest 2h(\d+)m \(failed ")
        self.assertIn("consumer " + C1, out)
        self.assertIn("consumer " + C2, out)
        for q in queues_of(C1, ["200ms", "1s"]) + queues_of(C2, ["1s"]):
            self.assertIn(q, out)
        work = [l for l in out.splitlines() if l.split()[:1] == ["hookmq." + C1]][0]
        self.assertEqual(work.split()[1:4], ["work", "0", "0"])
        self.assertIn("ok", work)
        # the peek returned the message: nothing consumed, order kept
        depth_is(dlq(C1), 2)
        self.assertEqual(self.ids(C1), ["old", "new"])

    def test_status_drift_and_missing(self):
        delays = ["10s"]
        conf2 = hqtest.write_config(os.path.join(self.dir, "drift.conf"),
                                    config(self.consumers + [(C3, delays)]))
        self.created.update(queues_of(C3, delays))
        retry = "hookmq.%s.retry.10s" % C3
        # the retry queue exists with another TTL (someone changed it in the console)
        hqtest.mgmt("PUT", "/queues/%2f/" + hqtest.q(retry), {
            "durable": True, "auto_delete": False,
            "arguments": {"x-queue-type": "quorum", "x-message-ttl": 5000,
                          "x-dead-letter-exchange": "",
                          "x-dead-letter-routing-key": "hookmq." + C3,
                          "x-dead-letter-strategy": "at-least-once",
                          "x-overflow": "reject-publish"}})
        r = dlx("apply", "-c", conf2)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        r = dlx("status", "-c", conf2)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("x-message-ttl", r.stdout)
        row = [l for l in r.stdout.splitlines() if l.split()[:1] == [retry]][0]
        self.assertIn("DRIFT", row)
        self.assertIn("1 differing", r.stdout)
        self.assertEqual(hqtest.queue_info(retry)["arguments"]["x-message-ttl"], 5000)
        # a missing DLQ
        hqtest.delete_queue(dlq(C3))
        r = dlx("status", "-c", conf2)
        self.assertEqual(r.returncode, 3)
        self.assertIn("MISSING", [l for l in r.stdout.splitlines() if l.split()[:1] == [dlq(C3)]][0])
        self.assertIn("queue %s is missing" % dlq(C3), r.stdout)
        self.assertIn("1 missing", r.stdout)
        self.assertEqual(hqtest.mgmt("GET", "/queues/%2f/" + hqtest.q(dlq(C3)), ok=(200, 404)).get("error"),
                         "Object Not Found")  # status never creates anything
        r = dlx("list", C3, "-c", conf2)
        self.assertEqual(r.returncode, 3)
        self.assertIn("does not exist", r.stderr)
        # the first config is still fine
        self.run_ok("status", "-c", self.conf)

    def test_unreachable_broker(self):
        conf = hqtest.write_config(os.path.join(self.dir, "down.conf"), config(self.consumers).replace(
            hqtest.AMQP_URI, "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()))
        for args in (["list", C1], ["status"], ["redrive", C1, "--all"], ["purge", C1, "--yes"]):
            r = dlx(*(args + ["-c", conf]))
            self.assertEqual(r.returncode, 1, "%s: %s" % (args, r.stderr))
            self.assertIn("cannot connect", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
