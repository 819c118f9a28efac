"""hookmq-replay against the test broker, with archives written as files.

A generated archive (three hourly segments of archive records (docs/archive.md): UTF-8 and binary
bodies, broker-owned headers, duplicates from redelivery, a lifecycle record, a torn last
line) and `hookmq-dlx apply` with two consumers: `bill` (stripe.invoice.#) and `ship`
(github.push, stripe.charge.*). Checked: --dry-run prints the events and their count and
publishes nothing; a time window replayed to one consumer reaches exactly the matching events
in its work queue (body byte-identical, message id, content type, timestamp, headers without
the broker-owned ones, hookmq-replay-id / hookmq-replayed-at / hookmq-attempt = 1), once each,
and nothing reaches the other consumer; a re-run says "already completed"; "replayed"
lifecycle records; --ignore-bindings; --to-exchange reaches both consumers and the archive;
--id / --type / --grep / --source; usage (2) and missing-queue (3) errors; SIGTERM; resume
after kill -9 mid-replay (600 events at 200/s): every event present, duplicates at most the
in-flight window, and the second run sends exactly what the checkpoint did not confirm; a
segment deleted mid-replay fails the replay (exit 1, not recorded as complete).
Names are unique per run so the test can share the broker."""
import base64
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import hqtest

P = "rp%d" % random.randint(1000, 9999)
EXCHANGE = "hookmq.%s.events" % P
BILL = P + "bill"
SHIP = P + "ship"
GHOST = P + "ghost"  # in the config, never applied
ARCHIVE_Q = "hookmq.archive"
HOUR = 3600 * 1000
NOW_MS = int(time.time() * 1000)
H0 = (NOW_MS // HOUR - 48) * HOUR  # three archived hours, two days ago
STEP = 2 * 60 * 1000               # one event every 2 minutes
N_SMALL = 90                       # 3 hours of events
WINDOW_FROM = H0 + 30 * 60 * 1000  # event 15 exactly: included
WINDOW_TO = H0 + 136 * 60 * 1000   # event 68 exactly: excluded
KINDS = [  # (source, type, routing key)
    ("stripe", "invoice.paid", "stripe.invoice.paid"),
    ("stripe", "charge.succeeded", "stripe.charge.succeeded"),
    ("github", "push", "github.push"),
    ("github", "issues", "github.issues"),
    ("stripe", "invoice.payment_failed", "stripe.invoice.payment_failed"),
]
BROKER_OWNED = ("x-delivery-count", "x-first-death-queue", "x-last-death-reason")
WINDOW = 32  # --window of the resume test: the duplicate bound


def rfc3339(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def seg_path(root, ms):
    d = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return os.path.join(root, d.strftime("%Y/%m/%d"), d.strftime("%H") + ".jsonl")


def event(i, t, kind=None, body=None, eid=None):
    src, typ, rk = kind or KINDS[i % len(KINDS)]
    eid = eid or ("evt_%04d" % i if src == "stripe" else "gh-%04d" % i)
    if body is None:
        if i % 7 == 3:
            body = b"\xff\xfe\x00binary\x80" + bytes([i % 256]) + b"\r\n"
        else:
            body = json.dumps({"id": eid, "type": typ, "n": i, "text": "h\u00e9llo \"w\" \\ /\n\t\u2603"},
                              ensure_ascii=False).encode()
    headers = {"hookmq-source": src, "hookmq-event-type": typ, "hookmq-received-at": t,
               "hookmq-scheme": "none", "http-x-request-id": "req-%d" % i,
               "http-x-name": "Zo\u00eb"}
    if i % 5 == 1:
        headers.update({"x-delivery-count": 7, "x-first-death-queue": "old.q",
                        "x-last-death-reason": "rejected"})
    rec = {"kind": "event", "received_at": t, "source": src, "type": typ, "id": eid,
           "routing_key": rk,
           "properties": {"message_id": eid, "content_type": "application/json; charset=utf-8",
                          "timestamp": t // 1000, "delivery_mode": 2},
           "headers": headers}
    try:
        rec["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        rec["body_b64"] = base64.b64encode(body).decode()
    return rec, body


def write_archive(root, records, torn=False):
    """records: [(segment_ms, record)] in order; each goes to the segment of segment_ms."""
    by = {}
    for seg_ms, rec in records:
        by.setdefault(seg_path(root, seg_ms), []).append(json.dumps(rec, ensure_ascii=False))
    paths = sorted(by)
    for p in paths:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write("\n".join(by[p]) + "\n")
            if torn and p == paths[-1]:
                f.write('{"kind":"event","received_at":%d,"source":"stripe","ty' % WINDOW_FROM)


def config_text(archive_dir, consumers):
    lines = ['broker = {', '  uris = [ "%s" ];' % hqtest.AMQP_URI,
             '  exchange = "%s";' % EXCHANGE, '};',
             'sources = ( { name = "stripe"; scheme = "none"; }, { name = "github"; scheme = "none"; } );',
             'consumers = (']
    lines.append(",\n".join('  { name = "%s"; bindings = [ %s ]; handler = "log";\n'
                            '    retry = { delays = [ "10s" ]; max_attempts = 3; }; }'
                            % (n, ", ".join('"%s"' % b for b in bs)) for n, bs in consumers))
    lines += [');', 'archive = { dir = "%s"; };' % archive_dir,
              'log = { format = "text"; level = "info"; };']
    return "\n".join(lines) + "\n"


CONSUMERS = [(BILL, ["stripe.invoice.#"]), (SHIP, ["github.push", "stripe.charge.*"])]


def topic_match(pattern, key):
    """RabbitMQ topic semantics, independent of the C code."""
    pw = pattern.split(".") if pattern else []
    kw = key.split(".") if key else []

    def m(i, j):
        if i == len(pw):
            return j == len(kw)
        if pw[i] == "#":
            return any(m(i + 1, k) for k in range(j, len(kw) + 1))
        if j == len(kw):
            return False
        return (pw[i] == "*" or pw[i] == kw[j]) and m(i + 1, j + 1)
    return m(0, 0)


def matches(bindings, rk):
    return any(topic_match(b, rk) for b in bindings)



def lc_ids(msgs):
    """Event ids of lifecycle messages taken from a queue: a message holds one record (header
    hookmq-event-id) or, batched, several (header hookmq-records, one JSON record per line)."""
    ids = []
    for m in msgs:
        h = m["properties"].get("headers", {})
        if h.get("hookmq-records", 1) > 1:
            lines = m["body"].decode().splitlines()
            assert len(lines) == h["hookmq-records"], m
            ids += [json.loads(ln)["id"] for ln in lines]
        else:
            ids.append(h["hookmq-event-id"])
    return ids

class Env:
    dir = None


def replay(*args, config=None, timeout=120):
    r = subprocess.run([hqtest.binary("hookmq-replay"), "-c", config or Env.config] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    return r


def take_all(queue):
    return hqtest.get_messages(queue)


def replay_id_of(out):
    m = re.search(r"\b(rpl-[0-9a-f]{16})\b", out)
    assert m, out
    return m.group(1)


def summary_numbers(out):
    m = re.search(r"(\d+) of (\d+) events replayed .*\((\d+) this run, (\d+) confirmed by earlier runs\)",
                  out)
    assert m, out
    p = re.search(r"(\d+) published, (\d+) confirmed, (\d+) failed", out)
    assert p, out
    return {"done": int(m.group(1)), "total": int(m.group(2)), "this_run": int(m.group(3)),
            "earlier": int(m.group(4)), "published": int(p.group(1)),
            "confirmed": int(p.group(2)), "failed": int(p.group(3))}


def setUpModule():
    Env.dir = tempfile.mkdtemp(prefix="hq-replay-")
    Env.archive = os.path.join(Env.dir, "archive")
    Env.config = hqtest.write_config(os.path.join(Env.dir, "hookmq.conf"),
                                     config_text(Env.archive, CONSUMERS))
    # the small archive
    Env.events = {}  # id -> (record, body bytes)
    records = []
    for i in range(N_SMALL):
        t = H0 + i * STEP
        rec, body = event(i, t)
        Env.events[rec["id"]] = (rec, body)
        records.append((t, rec))
        if i in (20, 21, 40):  # redelivered to the logger: the same record again, an hour later
            records.append((t + HOUR, rec))
        if i == 30:
            lc = {"kind": "lifecycle", "received_at": t, "source": "stripe", "type": "processed",
                  "id": rec["id"], "routing_key": BILL + ".processed",
                  "properties": {"message_id": "lc-1", "content_type": "application/json",
                                 "timestamp": t // 1000},
                  "headers": {"hookmq-source": "stripe", "hookmq-event-id": rec["id"],
                              "hookmq-verdict": "processed"},
                  "body": json.dumps({"source": "stripe", "id": rec["id"], "verdict": "processed"})}
            records.append((t, lc))
    # one id with characters that need care
    t = WINDOW_FROM + 61 * 1000
    rec, body = event(1000, t, kind=KINDS[0], eid="evt/\u00fc 1+x")
    Env.events[rec["id"]] = (rec, body)
    records.append((t, rec))
    write_archive(Env.archive, records, torn=True)
    hqtest.run_dlx_apply(Env.config)
    # a config naming a consumer whose queue was never declared
    Env.ghost_config = hqtest.write_config(
        os.path.join(Env.dir, "ghost.conf"),
        config_text(Env.archive, CONSUMERS + [(GHOST, ["#"])]))
    for q in ("hookmq." + BILL, "hookmq." + SHIP):
        hqtest.purge(q)
    take_all(ARCHIVE_Q)


def tearDownModule():
    for n in (BILL, SHIP):
        for q in ("hookmq." + n, "hookmq.%s.dlq" % n, "hookmq.%s.retry.10s" % n):
            hqtest.delete_queue(q)
    hqtest.delete_exchange(EXCHANGE)
    take_all(ARCHIVE_Q)
    if Env.dir and not os.environ.get("HQ_TEST_KEEP"):
        shutil.rmtree(Env.dir, ignore_errors=True)


def in_window(rec, frm=WINDOW_FROM, to=WINDOW_TO):
    return frm <= rec["received_at"] < to


def expected(bindings=None, frm=WINDOW_FROM, to=WINDOW_TO, pred=None):
    out = set()
    for eid, (rec, _) in Env.events.items():
        if not in_window(rec, frm, to):
            continue
        if bindings is not None and not matches(bindings, rec["routing_key"]):
            continue
        if pred and not pred(rec):
            continue
        out.add(eid)
    return out


WIN = ["--from", rfc3339(WINDOW_FROM), "--to", rfc3339(WINDOW_TO)]


class ReplayTest(unittest.TestCase):
    maxDiff = None

    def tearDown(self):
        for q in ("hookmq." + BILL, "hookmq." + SHIP):
            hqtest.purge(q)

    def check_copy(self, m, rid, t0, t1, attempt_reset=True):
        props = m["properties"]
        eid = props["message_id"]
        self.assertIn(eid, Env.events)
        rec, body = Env.events[eid]
        self.assertEqual(m["body"], body, eid)  # byte-identical
        self.assertEqual(props.get("content_type"), rec["properties"]["content_type"])
        self.assertEqual(props.get("timestamp"), rec["properties"]["timestamp"])
        self.assertEqual(props.get("delivery_mode"), 2)
        h = props.get("headers", {})
        for k, v in rec["headers"].items():
            if k in BROKER_OWNED:
                continue
            self.assertEqual(h.get(k), v, "%s: header %s" % (eid, k))
        self.assertNotIn("x-first-death-queue", h)
        self.assertNotIn("x-last-death-reason", h)
        self.assertNotEqual(h.get("x-delivery-count"), 7)  # the archived value is not copied
        self.assertEqual(h.get("hookmq-replay-id"), rid)
        self.assertIsInstance(h.get("hookmq-replayed-at"), int)
        self.assertTrue(t0 - 1000 <= h["hookmq-replayed-at"] <= t1 + 1000, h["hookmq-replayed-at"])
        if attempt_reset:
            self.assertEqual(h.get("hookmq-attempt"), 1)
        else:
            self.assertNotIn("hookmq-attempt", h)
        return eid

    # ---------------------------------------------------------------- dry run

    def test_1_dry_run(self):
        want = expected(CONSUMERS[0][1])
        r = replay(*WIN, "--to-consumer", BILL, "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"dry run: (\d+) events would be replayed", r.stdout)
        self.assertTrue(m, r.stdout)
        self.assertEqual(int(m.group(1)), len(want))
        listed = set(line.split(" ")[2] for line in r.stdout.splitlines()
                     if line[:4].isdigit())
        self.assertEqual(listed, set(e.replace(" ", "?") for e in want))
        self.assertIn("3 archive duplicates collapsed", r.stdout)  # events 20, 21, 40
        self.assertEqual(take_all("hookmq." + BILL), [])
        self.assertEqual(take_all("hookmq." + SHIP), [])
        self.assertFalse(os.path.exists(os.path.join(Env.archive, ".replay",
                                                     replay_id_of(r.stdout) + ".ckpt")))

    # ---------------------------------------------------------------- window to one consumer

    def test_2_window_to_consumer(self):
        want = expected(CONSUMERS[0][1])
        self.assertGreater(len(want), 10)
        take_all(ARCHIVE_Q)
        t0 = int(time.time() * 1000)
        r = replay(*WIN, "--to-consumer", BILL)
        t1 = int(time.time() * 1000)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rid = replay_id_of(r.stdout)
        n = summary_numbers(r.stdout)
        self.assertEqual((n["done"], n["total"], n["published"], n["confirmed"], n["failed"]),
                         (len(want), len(want), len(want), len(want), 0))
        self.assertIn("replayed (", r.stderr)  # the progress line
        msgs = take_all("hookmq." + BILL)
        got = [self.check_copy(m, rid, t0, t1) for m in msgs]
        self.assertEqual(sorted(got), sorted(want))  # exactly these, once each
        for m in msgs:
            self.assertEqual(m["routing_key"], "hookmq." + BILL)
            self.assertEqual(m["exchange"], "")
        self.assertEqual(take_all("hookmq." + SHIP), [])
        # "replayed" lifecycle records (best effort, but at this size all of them)
        arch = take_all(ARCHIVE_Q)
        lc = [m for m in arch if m["properties"].get("headers", {}).get("hookmq-verdict") == "replayed"
              and m["properties"]["headers"].get("hookmq-consumer") == BILL]
        self.assertEqual(sorted(lc_ids(lc)), sorted(want))
        self.assertEqual([m for m in arch if m["properties"].get("headers", {}).get("hookmq-replay-id")],
                         [])  # --to-consumer does not go through the exchange
        # the same command again: already completed, nothing sent
        r2 = replay(*WIN, "--to-consumer", BILL)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertIn("already completed", r2.stdout)
        self.assertEqual(replay_id_of(r2.stdout), rid)
        self.assertRegex(r2.stdout, r"\Areplay rpl-[0-9a-f]{16} already completed at \S+ "
                                    r"\(\d+ events\); use --restart to replay again\n\Z")
        # the same window written differently is the same replay
        r3 = replay("--to-consumer", BILL, "--to", rfc3339(WINDOW_TO).replace("Z", "+00:00"),
                    "--from", rfc3339(WINDOW_FROM))
        self.assertIn("already completed", r3.stdout)
        self.assertEqual(take_all("hookmq." + BILL), [])
        # --restart replays again, with the same id
        r4 = replay(*WIN, "--to-consumer", BILL, "--restart", "--no-lifecycle")
        self.assertEqual(r4.returncode, 0, r4.stderr)
        self.assertEqual(summary_numbers(r4.stdout)["this_run"], len(want))
        self.assertEqual(len(take_all("hookmq." + BILL)), len(want))

    def test_3_ignore_bindings(self):
        want = expected()
        t0 = int(time.time() * 1000)
        r = replay(*WIN, "--to-consumer", SHIP, "--ignore-bindings", "--no-lifecycle", "-q")
        t1 = int(time.time() * 1000)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.count("replayed ("), 0)  # --quiet
        rid = replay_id_of(r.stdout)
        got = [self.check_copy(m, rid, t0, t1) for m in take_all("hookmq." + SHIP)]
        self.assertEqual(sorted(got), sorted(want))
        self.assertEqual(take_all("hookmq." + BILL), [])
        # without --ignore-bindings it is another replay, of fewer events
        r = replay(*WIN, "--to-consumer", SHIP, "--dry-run")
        self.assertNotEqual(replay_id_of(r.stdout), rid)
        self.assertIn("dry run: %d events" % len(expected(CONSUMERS[1][1])), r.stdout)

    def test_4_to_exchange(self):
        take_all(ARCHIVE_Q)
        t0 = int(time.time() * 1000)
        r = replay(*WIN, "--to-exchange", "--no-lifecycle")
        t1 = int(time.time() * 1000)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rid = replay_id_of(r.stdout)
        self.assertEqual(summary_numbers(r.stdout)["confirmed"], len(expected()))
        for name, bindings in CONSUMERS:
            msgs = take_all("hookmq." + name)
            got = [self.check_copy(m, rid, t0, t1, attempt_reset=False) for m in msgs]
            self.assertEqual(sorted(got), sorted(expected(bindings)), name)
            for m in msgs:
                self.assertEqual(m["exchange"], EXCHANGE)
                self.assertEqual(m["routing_key"], Env.events[m["properties"]["message_id"]][0]["routing_key"])
        # the archive gets every replayed event again
        arch = [m for m in take_all(ARCHIVE_Q)
                if m["properties"].get("headers", {}).get("hookmq-replay-id") == rid]
        self.assertEqual(sorted(m["properties"]["message_id"] for m in arch), sorted(expected()))

    # ---------------------------------------------------------------- filters

    def test_5_filters(self):
        def count(*args):
            r = replay(*args, "--dry-run")
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.search(r"dry run: (\d+) events", r.stdout)
            self.assertTrue(m, r.stdout)
            return int(m.group(1))
        frm = ["--from", rfc3339(H0 - HOUR)]
        self.assertEqual(count(*frm, "--to-exchange"), len(Env.events))
        self.assertEqual(count(*frm, "--source", "github", "--to-exchange"),
                         len(expected(frm=0, to=2**62, pred=lambda r: r["source"] == "github")))
        self.assertEqual(count(*frm, "--type", "invoice.*", "--to-exchange"),
                         len(expected(frm=0, to=2**62, pred=lambda r: r["type"].startswith("invoice."))))
        self.assertEqual(count(*frm, "--grep", '"n": 4,', "--to-exchange"), 1)
        self.assertEqual(count(*WIN, "--source", "stripe", "--type", "charge.*", "--to-exchange"),
                         len(expected(pred=lambda r: r["type"] == "charge.succeeded")))
        # one event by id (no --from needed), to a consumer
        eid = "evt/\u00fc 1+x"
        r = replay("--id", eid, "--to-consumer", BILL, "--no-lifecycle")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msgs = take_all("hookmq." + BILL)
        self.assertEqual([m["properties"]["message_id"] for m in msgs], [eid])
        self.assertEqual(msgs[0]["body"], Env.events[eid][1])
        # an id whose routing key the consumer's bindings do not match
        r = replay("--id", "gh-0002", "--to-consumer", BILL, "--no-lifecycle")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to replay", r.stdout)
        self.assertEqual(take_all("hookmq." + BILL), [])
        # an event outside the window is not replayed
        self.assertEqual(count("--id", "evt_0000", *WIN, "--to-exchange"), 0)

    # ---------------------------------------------------------------- errors

    def test_6_errors(self):
        r = replay("--to-consumer", BILL)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unbounded", r.stderr)
        r = replay("--from", "-1h")
        self.assertEqual(r.returncode, 2)
        self.assertIn("target", r.stderr)
        r = replay("--from", "-1h", "--to-consumer", BILL, "--to-exchange")
        self.assertEqual(r.returncode, 2)
        r = replay("--from", "-1h", "--to-consumer", "nosuch")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no consumer named 'nosuch'", r.stderr)
        r = replay("--from", "bogus", "--to-exchange")
        self.assertEqual(r.returncode, 2)
        r = replay(*WIN, "--to-consumer", GHOST, config=Env.ghost_config)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("hookmq.%s does not exist" % GHOST, r.stderr)
        self.assertIn("hookmq-dlx apply", r.stderr)
        r = replay("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--to-consumer", r.stdout)
        r = replay("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("hookmq-replay "))
        bad = os.path.join(Env.dir, "bad.conf")
        hqtest.write_config(bad, "broker = { uris = [ 1 ]; };\n")
        r = replay("--from", "-1h", "--to-exchange", config=bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:", r.stderr)

    # ---------------------------------------------------------------- interruption

    def big_archive(self):
        """600 stripe.invoice.* events in their own archive and config."""
        if getattr(Env, "big_config", None):
            return
        root = os.path.join(Env.dir, "big")
        records = []
        Env.big = {}
        for i in range(600):
            t = H0 + i * 5000
            rec, body = event(i, t, kind=KINDS[0] if i % 2 else KINDS[4], eid="big-%04d" % i)
            Env.big[rec["id"]] = body
            records.append((t, rec))
        write_archive(root, records)
        Env.big_config = hqtest.write_config(os.path.join(Env.dir, "big.conf"),
                                             config_text(root, CONSUMERS))
        Env.big_root = root

    def ckpt_lines(self, rid):
        p = os.path.join(Env.big_root, ".replay", rid + ".ckpt")
        with open(p) as f:
            return [ln for ln in f.read().split("\n") if ln.startswith("c ")]

    def test_7_resume_after_kill9(self):
        self.big_archive()
        args = ["--from", rfc3339(H0), "--to-consumer", BILL, "--window", str(WINDOW)]
        p = subprocess.Popen([hqtest.binary("hookmq-replay"), "-c", Env.big_config] + args +
                             ["--rate", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            rid = None
            deadline = time.time() + 30
            while time.time() < deadline:  # wait for the checkpoint to show progress
                d = os.path.join(Env.big_root, ".replay")
                names = [n for n in os.listdir(d) if n.endswith(".ckpt")] if os.path.isdir(d) else []
                if names:
                    rid = names[0][:-5]
                    if len(self.ckpt_lines(rid)) >= 150:
                        break
                time.sleep(0.05)
            self.assertIsNotNone(rid)
            self.assertIsNone(p.poll(), "finished before it could be killed")
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
        confirmed = len(set(self.ckpt_lines(rid)))
        self.assertGreater(confirmed, 100)
        self.assertLess(confirmed, 600)
        # the same command again (without --rate: not part of the replay's identity)
        r = replay(*args, config=Env.big_config, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("resuming replay %s" % rid, r.stderr)
        n = summary_numbers(r.stdout)
        self.assertEqual(n["earlier"], confirmed)
        self.assertEqual(n["published"], 600 - confirmed)  # the confirmed prefix is not re-sent
        self.assertEqual(n["done"], 600)
        msgs = take_all("hookmq." + BILL)
        ids = [m["properties"]["message_id"] for m in msgs]
        self.assertEqual(set(ids), set(Env.big))  # every event present
        dups = len(ids) - 600
        self.assertGreaterEqual(dups, 0)
        self.assertLessEqual(dups, WINDOW, "duplicates beyond the in-flight window")
        for m in msgs:
            self.assertEqual(m["body"], Env.big[m["properties"]["message_id"]])
            self.assertEqual(m["properties"]["headers"]["hookmq-replay-id"], rid)
        r = replay(*args, config=Env.big_config)
        self.assertIn("already completed", r.stdout)

    def test_8_sigterm(self):
        self.big_archive()
        args = ["--from", rfc3339(H0), "--source", "stripe", "--to-consumer", SHIP,
                "--ignore-bindings", "--no-lifecycle"]
        p = subprocess.Popen([hqtest.binary("hookmq-replay"), "-c", Env.big_config] + args +
                             ["--rate", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        d = os.path.join(Env.big_root, ".replay")
        before = set(os.listdir(d)) if os.path.isdir(d) else set()

        def confirmed_some():  # this replay's checkpoint shows confirmed events
            new = [n for n in os.listdir(d) if n.endswith(".ckpt") and n not in before] \
                if os.path.isdir(d) else []
            return new and len(self.ckpt_lines(new[0][:-5])) >= 30

        try:
            hqtest.wait_for(confirmed_some, 30, interval=0.05, what="the replay to confirm events")
        except BaseException:
            p.kill()
            p.communicate()
            raise
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("interrupted", out)
        n = summary_numbers(out)
        self.assertGreater(n["confirmed"], 0)
        self.assertLess(n["confirmed"], 600)
        self.assertEqual(n["published"], n["confirmed"])  # in-flight ones were settled
        # a dry run now lists only what is left
        r = replay(*args, "--dry-run", config=Env.big_config)
        self.assertIn("dry run: %d events would be replayed" % (600 - n["confirmed"]), r.stdout)
        self.assertIn("%d already confirmed" % n["confirmed"], r.stdout)
        r = replay(*args, config=Env.big_config, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        ids = [m["properties"]["message_id"] for m in take_all("hookmq." + SHIP)]
        self.assertEqual(len(ids), 600)
        self.assertEqual(set(ids), set(Env.big))

    def test_9_connection_lost(self):
        """The broker closes the connection mid-replay: exit 1, and re-running resumes."""
        self.big_archive()
        args = ["--from", rfc3339(H0), "--type", "invoice.paid", "--to-consumer", BILL,
                "--no-lifecycle", "--window", str(WINDOW)]
        p = subprocess.Popen([hqtest.binary("hookmq-replay"), "-c", Env.big_config] + args +
                             ["--rate", "15"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            def conn():
                for c in hqtest.mgmt("GET", "/connections") or []:
                    if c.get("client_properties", {}).get("connection_name") == "hookmq-replay":
                        return c["name"]
                return None
            name = hqtest.wait_for(conn, 25, interval=0.2, what="the replay's connection")
            hqtest.mgmt("DELETE", "/connections/" + hqtest.q(name), ok=(200, 204, 404))
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("FAILED", out)
        self.assertIn("run the same command again to resume", out)
        first = summary_numbers(out)
        self.assertLess(first["done"], 300)
        r = replay(*args, config=Env.big_config, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        n = summary_numbers(r.stdout)
        self.assertEqual(n["earlier"], first["confirmed"])
        self.assertEqual(n["done"], 300)  # the odd-numbered half is invoice.paid
        ids = [m["properties"]["message_id"] for m in take_all("hookmq." + BILL)]
        self.assertEqual(set(ids), set(e for e in Env.big if int(e[4:]) % 2 == 1))
        self.assertLessEqual(len(ids) - 300, WINDOW)


    def test_10_segment_deleted_mid_replay(self):
        """A segment of the window deleted (retention) after the replay listed the archive:
        the replay fails (exit 1) instead of completing without its events."""
        root = os.path.join(Env.dir, "gap")
        records = []
        for i in range(40):  # 20 in hour H0, 20 in hour H0 + 1
            t = H0 + (i // 20) * HOUR + (i % 20) * 1000
            rec, _ = event(i, t, kind=KINDS[0], eid="gap-%04d" % i)
            records.append((t, rec))
        write_archive(root, records)
        config = hqtest.write_config(os.path.join(Env.dir, "gap.conf"),
                                     config_text(root, CONSUMERS))
        second = seg_path(root, H0 + HOUR)
        self.assertTrue(os.path.exists(second))
        args = ["--from", rfc3339(H0), "--to-consumer", BILL, "--no-lifecycle"]
        p = subprocess.Popen([hqtest.binary("hookmq-replay"), "-c", config] + args +
                             ["--rate", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            d = os.path.join(root, ".replay")

            def confirmed():  # the second pass runs: it listed the segments already
                for n in (os.listdir(d) if os.path.isdir(d) else []):
                    if n.endswith(".ckpt"):
                        with open(os.path.join(d, n)) as f:
                            if any(ln.startswith("c ") for ln in f.read().split("\n")):
                                return n[:-5]
                return None
            rid = hqtest.wait_for(confirmed, 30, interval=0.02, what="a confirmed event")
            self.assertIsNone(p.poll(), "finished before the segment could be deleted")
            os.unlink(second)  # as retention does
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("FAILED", out)
        self.assertIn("vanished", err)
        self.assertLessEqual(summary_numbers(out)["confirmed"], 20)
        # not recorded as complete: the same command resumes (over what is left now)
        r = replay(*args, config=config, timeout=120)
        self.assertNotIn("already completed", r.stdout)
        self.assertIn("resuming replay %s" % rid, r.stderr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        take_all("hookmq." + BILL)

if __name__ == "__main__":
    unittest.main(verbosity=2)
