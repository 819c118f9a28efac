#!/usr/bin/env python3
"""soak: a long run of the whole pipeline with a steady mixed load (issue 11, "The soak test";
docs/reliability.md#soak-test). Python 3 standard library only; real programs against the
private RabbitMQ node of the ctest `broker` fixture (HQ_BROKER_* env), 127.0.0.1 only.

One config, four long-running programs: hookmq-gateway (github source, spool), two
hookmq-worker consumers with the exec handler (`<src>-a`, and `<src>-b` with a `dedupe`
ledger), and the archive logger `hookmq-archive run` under libfaketime. A third consumer
`<src>-c` has a queue and no worker: the target of the replay.

The load (HQ_SOAK_RATE requests/s, default 20, one thread, every request signed with the github
scheme): pushes that the handlers ACK, events that they RETRY once (type `retry`: exit 75 on
attempt 1), events that they REJECT (type `reject`, parked in each consumer's DLQ), duplicates
(an earlier delivery id again, with a new body: the dedupe ledger of `-b` catches it) and exact
replays (an earlier request byte for byte: the gateway's replay cache answers it).

During the run (times are fractions of HQ_SOAK_SECONDS, default 1200; every episode is in
the first half, the second half is steady load, the window of the growth fit):
  - the archive logger's wall clock (CLOCK_REALTIME through libfaketime; the monotonic clock is
    real) jumps one hour ahead every D/100 s, so the archive closes and compresses a segment at
    each step and crosses about 100 hour boundaries; once (at 0.36) it steps back 30 minutes
    across the boundary it just passed (issue 11 item 15);
  - 0.05, 0.10, 0.22, 0.25: a worker is stopped with SIGTERM (must exit 0) and started again;
  - 0.14: the spool episode: the broker is stopped, the gateway spools, a poison event is posted
    (its routing key reaches a full reject-publish queue: the broker nacks it every time), the
    broker starts again; the spool must drain and the poison record must be the one record in
    the quarantine (`hookmq-gateway --spool-quarantine`, issue 11 item 2);
  - 0.30 and at the end: the archive logger is restarted (SIGTERM), which runs keep_days = 1
    retention: by then the fake clock is more than a day ahead and old segments are deleted.
    Before each restart the archive is queried and the ids found are kept (ids are "archived"
    when a query found them: retention deletes them later by design);
  - 0.40: hookmq-replay of a window of the last 3-4 fake hours (several segments, compressed
    ones among them) to consumer `-c`, while the clock steps again (the open segment is
    compressed during the scan, issue 11 item 13). Every id of the window must be in `-c`'s
    queue.

Every 10 s the RSS (VmRSS) and the open file descriptors of every hookmq process are sampled.
At the end a least-squares slope over the second half of the run is computed per process:
the run fails when a process grows by more than RSS_MAX_MIB_H MiB/h (8) or FD_MAX_H fds/h (10)
and its last samples are all above its first samples of the window (RSS by more than 1 MiB).

Audit: every id answered 2xx was processed (the exec handler's record file) or parked (DLQ) by
both consumers and found in the archive; the dedupe ledger file of `-b` never held more lines
than its window allows (4096 + twice the events of one window + slack: issue 11 item 12); the
replay delivered every id of its window. Zero loss. A table of the figures is printed at the end
(markdown, for docs/reliability.md).

Exit 0 pass, 1 fail, 77 skipped (no libfaketime, or a sanitizer build).
Environment: HQ_SOAK_SECONDS (default 1200, at least 120), HQ_SOAK_RATE (default 20, 1..200),
HQ_SOAK_KEEP=1 keeps the work directory (kept anyway when the run fails; its samples.csv has
every sample: seconds, process, pid, VmRSS, RssAnon, RssFile in kB, open fds).
"""
import collections
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))

import hqtest  # noqa: E402
from chaos import Rig  # noqa: E402
from test_archive_clock import LIBFAKETIME  # noqa: E402

SKIP = 77
SECRET = "soak-gh-secret"
SAMPLE_S = 10.0
RSS_MAX_MIB_H = 8.0
FD_MAX_H = 10.0
DEDUPE_WINDOW_S = 20
LEDGER_SLACK = 1024
HOUR = 3600


def log(*a):
    print("[soak %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def metric_sum(port, name):
    return Rig.metric_sum(None, port, name)


class Soak:
    def __init__(self, duration, rate):
        self.duration = duration
        self.rate = rate
        self.src = "soak%d" % random.randint(10000, 99999)
        self.dir = tempfile.mkdtemp(prefix="hq-soak-")
        self.config = os.path.join(self.dir, "hookmq.conf")
        self.record = os.path.join(self.dir, "record.txt")
        self.spool = os.path.join(self.dir, "spool")
        self.archive_dir = os.path.join(self.dir, "archive")
        self.ledger = os.path.join(self.dir, "dedupe", "b")
        self.clock = os.path.join(self.dir, "faketime")
        self.port = hqtest.free_port()
        self.gw_metrics = hqtest.free_port()
        self.ar_metrics = hqtest.free_port()
        self.wk_metrics = {"a": hqtest.free_port(), "b": hqtest.free_port()}
        self.consumer = {k: "%s-%s" % (self.src, k) for k in ("a", "b", "c")}
        self.fullq = "test.soak.%s.full" % self.src
        self.procs = {}
        self.lock = threading.RLock()  # self.procs, the clock
        self.stop_load = threading.Event()
        self.stop_bg = threading.Event()
        self.offset = 0.0  # the archive logger's clock: real time + offset (s)
        self.clock_steps = []  # real times of the forward steps
        self.back_steps = 0
        self.reqs = []  # (delivery id, body, headers) of published requests, for duplicates/replays
        self.sent = collections.Counter()
        self.answers = collections.Counter()
        self.intervals = collections.defaultdict(list)  # id -> [(sent, answered)] of 2xx publishes
        self.accepted = set()
        self.poison = "%s-poison" % self.src
        self.samples = collections.defaultdict(list)  # role -> [(t, pid, rss kB, fds)]
        self.ledger_max = 0
        self.ledger_bound = 0
        self.archived = collections.Counter()
        self.restarts = collections.Counter()
        self.figures = collections.OrderedDict()
        self.failures = []
        self.t0 = time.time()
        self.write_config()
        self.set_clock(0.0)

    # ---- config and programs
    def write_config(self):
        cmd = ("case $HOOKMQ_EVENT_TYPE in retry) [ $HOOKMQ_ATTEMPT -ge 2 ] || exit 75;; "
               "reject) exit 3;; esac; echo $HOOKMQ_CONSUMER $HOOKMQ_EVENT_ID $HOOKMQ_ATTEMPT >> "
               + self.record)
        cons = []
        for k in ("a", "b"):
            dedupe = ('dedupe = { window = "%ds"; path = "%s"; };' % (DEDUPE_WINDOW_S, self.ledger)
                      if k == "b" else "")
            cons.append('  { name = "%s"; bindings = [ "%s.push", "%s.retry", "%s.reject" ];\n'
                        '    handler = "exec"; options = { command = "%s"; timeout = "20s"; };\n'
                        '    prefetch = 8; concurrency = 2; metrics_listen = "127.0.0.1:%d";\n'
                        '    retry = { delays = [ "200ms" ]; max_attempts = 3; }; %s }'
                        % (self.consumer[k], self.src, self.src, self.src, cmd,
                           self.wk_metrics[k], dedupe))
        cons.append('  { name = "%s"; bindings = [ "%s.replayonly" ]; handler = "log"; }'
                    % (self.consumer["c"], self.src))
        hqtest.write_config(self.config, """
broker = {
  uris = [ "%s" ];
  exchange = "hookmq.events";
  queue_type = "quorum";
  heartbeat_s = 5;
};
gateway = {
  listen = "127.0.0.1:%d";
  metrics_listen = "127.0.0.1:%d";
  max_body_bytes = 65536;
  max_in_flight = 1024;
  confirm_timeout_ms = 1000;
  spool_dir = "%s";
};
sources = ( { name = "%s"; scheme = "github"; secrets = [ "%s" ]; replay_cache_bytes = 65536; } );
consumers = (
%s
);
archive = { dir = "%s"; keep_days = 1; metrics_listen = "127.0.0.1:%d"; batch_max = 64; batch_ms = 50; };
log = { format = "text"; level = "info"; };
""" % (hqtest.AMQP_URI, self.port, self.gw_metrics, self.spool, self.src, SECRET,
            ",\n".join(cons), self.archive_dir, self.ar_metrics))

    def start(self, role, wait=True):
        env = {"TMPDIR": self.dir}
        if role == "gateway":
            argv = [hqtest.binary("hookmq-gateway"), "-c", self.config]
        elif role == "archive":
            argv = [hqtest.binary("hookmq-archive"), "run", "-c", self.config]
            env.update({"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": self.clock,
                        "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
        else:
            argv = [hqtest.binary("hookmq-worker"), "-c", self.config, "--consumer",
                    self.consumer[role[-1]]]
        p = hqtest.Proc(argv, env=env, name="%s-%d" % (role, self.restarts[role]),
                        workdir=self.dir)
        with self.lock:
            self.procs[role] = p
        if not wait:
            return p
        if role == "gateway":
            hqtest.wait_http(self.port, timeout=30, proc=p)
        else:
            hqtest.wait_for(lambda: not p.alive() or "consuming" in p.output(), 60,
                            what="%s consuming" % role)
            if not p.alive():
                raise AssertionError("%s exited (%s):\n%s" % (role, p.p.returncode,
                                                              p.output()[-3000:]))
        return p

    def restart(self, role):
        with self.lock:
            p = self.procs[role]
        t = time.time()
        rc = p.stop(timeout=60)
        if rc != 0:
            self.fail("%s exited %s on SIGTERM:\n%s" % (role, rc, p.output()[-2000:]))
        self.restarts[role] += 1
        self.start(role)
        log("%s restarted (SIGTERM, exit %s, back in %.1f s)" % (role, rc, time.time() - t))

    def fail(self, why):
        log("FAIL: " + why)
        self.failures.append(why)

    # ---- the archive logger's clock
    def set_clock(self, offset):
        with self.lock:
            self.offset = offset
            tmp = self.clock + ".tmp"
            with open(tmp, "w") as f:
                f.write("%+.3f\n" % offset)
            os.replace(tmp, self.clock)

    def step_clock(self, seconds=HOUR):
        with self.lock:
            self.set_clock(self.offset + seconds)
            self.clock_steps.append(time.time())

    def clock_loop(self, interval):
        nxt = time.time() + interval
        while not self.stop_bg.wait(max(0.0, nxt - time.time())):
            self.step_clock()
            nxt += interval

    def step_back(self):
        """Forward into a new hour, then 30 minutes back across that boundary (into the hour
        the logger has just closed), then forward again (issue 11 item 15)."""
        with self.lock:
            fake = time.time() + self.offset
            to_boundary = HOUR - fake % HOUR
            self.set_clock(self.offset + to_boundary + 5)
            self.clock_steps.append(time.time())
        time.sleep(2.0)
        with self.lock:
            self.set_clock(self.offset - 1800)
        time.sleep(3.0)
        with self.lock:
            self.set_clock(self.offset + 1800)
        self.back_steps += 1
        log("archive clock: stepped back 30 min across an hour boundary and forward again")

    # ---- load
    def post(self, kind, i):
        if kind == "replay" and self.reqs:
            eid, body, headers = self.reqs[-min(len(self.reqs), 3)]
        elif kind == "duplicate" and len(self.reqs) > 40:
            eid = self.reqs[-40][0]
            body = json.dumps({"i": i, "dup": True, "pad": "y" * 80}).encode()
            headers = hqtest.sign_github(SECRET, body, "push", eid)
        else:
            kind = kind if kind in ("push", "retry", "reject", "poison") else "push"
            eid = self.poison if kind == "poison" else "%s-%06d" % (self.src, i)
            body = json.dumps({"i": i, "kind": kind, "pad": "x" * 100}).encode()
            headers = hqtest.sign_github(SECRET, body, kind, eid)
        t = time.time()
        try:
            st, _, raw = hqtest.http_request(self.port, "POST", "/webhooks/" + self.src, body,
                                             headers, timeout=30)
        except OSError as e:
            self.answers["error"] += 1
            log("request %s: %s" % (eid, e))
            return None
        self.sent[kind] += 1
        self.answers[st] += 1
        if 200 <= st < 300:
            try:
                if json.loads(raw).get("id") != eid:
                    self.fail("%s answered with id %s" % (eid, json.loads(raw).get("id")))
            except ValueError:
                self.fail("%s: 2xx without a JSON body: %r" % (eid, raw[:100]))
            if kind not in ("poison", "replay"):
                self.intervals[eid].append((t, time.time()))
                self.accepted.add(eid)
                if kind != "duplicate":
                    self.reqs.append((eid, body, headers))
                    del self.reqs[:-100]
        return st

    def load_loop(self):
        pattern = (["push"] * 14 + ["retry", "retry", "reject", "duplicate", "duplicate", "replay"])
        i = 0
        nxt = time.time()
        while not self.stop_load.is_set():
            self.post(pattern[i % len(pattern)], i)
            i += 1
            nxt += 1.0 / self.rate
            delay = nxt - time.time()
            if delay > 0:
                self.stop_load.wait(delay)
            elif delay < -5:
                nxt = time.time()  # far behind (a slow moment): do not burst

    # ---- sampling
    def sample_loop(self):
        while not self.stop_bg.wait(SAMPLE_S):
            self.sample()

    def sample(self):
        t = time.time()
        with self.lock:
            procs = dict(self.procs)
        for role, p in procs.items():
            pid = p.p.pid
            try:
                with open("/proc/%d/status" % pid) as f:
                    st = dict((l.split(":")[0], int(l.split()[1])) for l in f
                              if l.startswith(("VmRSS:", "RssAnon:", "RssFile:")))
                fds = len(os.listdir("/proc/%d/fd" % pid))
                rss = st["VmRSS"]
            except (OSError, KeyError, ValueError):
                continue
            self.samples[role].append((t, pid, rss, fds))
            # every sample, for a look at a failed run (kept with the work directory)
            with open(os.path.join(self.dir, "samples.csv"), "a") as f:
                f.write("%.1f,%s,%d,%d,%d,%d,%d\n" % (t - self.t0, role, pid, rss,
                                                      st.get("RssAnon", 0), st.get("RssFile", 0), fds))
        try:
            with open(self.ledger) as f:
                lines = sum(1 for _ in f)
        except FileNotFoundError:
            lines = 0
        # the events of one window that reach -b (push/retry/duplicate: ACKed and recorded)
        live = int(self.rate * DEDUPE_WINDOW_S * 0.9) + 1
        bound = 4096 + 2 * live + LEDGER_SLACK
        self.ledger_max = max(self.ledger_max, lines)
        self.ledger_bound = bound
        if lines > bound:
            self.fail("dedupe ledger %s holds %d lines, more than %d" % (self.ledger, lines, bound))

    @staticmethod
    def slope(points):
        n = len(points)
        mx = sum(x for x, _ in points) / n
        my = sum(y for _, y in points) / n
        sxx = sum((x - mx) ** 2 for x, _ in points)
        if sxx == 0:
            return 0.0
        return sum((x - mx) * (y - my) for x, y in points) / sxx

    def growth(self):
        """Per role: slopes (RSS MiB/h, fds/h) over the second half of the run, of the process
        alive at the end; failures as documented in the module docstring."""
        half = self.t0 + (self.t_end - self.t0) / 2.0
        out = collections.OrderedDict()
        for role in ("gateway", "worker-a", "worker-b", "archive"):
            s = self.samples.get(role, [])
            if not s:
                self.fail("no samples of %s" % role)
                continue
            pid = s[-1][1]
            w = [x for x in s if x[0] >= half and x[1] == pid]
            if len(w) < 5:
                self.fail("%s: only %d samples in the second half" % (role, len(w)))
                continue
            rss = self.slope([(x[0], x[2] / 1024.0) for x in w]) * HOUR
            fds = self.slope([(x[0], x[3]) for x in w]) * HOUR
            first, last = w[:3], w[-3:]
            rss_grew = min(x[2] for x in last) > max(x[2] for x in first) + 1024
            fds_grew = min(x[3] for x in last) > max(x[3] for x in first)
            out[role] = (rss, fds, w[-1][2] / 1024.0, w[-1][3], len(w), min(x[2] for x in s) / 1024.0,
                         max(x[2] for x in s) / 1024.0)
            if rss > RSS_MAX_MIB_H and rss_grew:
                self.fail("%s: RSS keeps growing, %.1f MiB/h (limit %.0f)" % (role, rss, RSS_MAX_MIB_H))
            if fds > FD_MAX_H and fds_grew:
                self.fail("%s: open fds keep growing, %.1f/h (limit %.0f)" % (role, fds, FD_MAX_H))
        return out

    # ---- episodes
    def spool_episode(self):
        log("spool episode: broker stop")
        hqtest.broker("stop")
        try:
            hqtest.wait_for(lambda: (metric_sum(self.gw_metrics, "hookmq_gateway_spool_events")
                                     or 0) >= 10, 60, what="10 spooled events")
            st = self.post("poison", 0)
            if st != 202:
                self.fail("poison event answered %s while spooling, not 202" % st)
            hqtest.wait_for(lambda: (metric_sum(self.gw_metrics, "hookmq_gateway_spool_events")
                                     or 0) >= 30, 60, what="30 spooled events")
            self.figures["spooled events (peak)"] = int(
                metric_sum(self.gw_metrics, "hookmq_gateway_spool_events") or 0)
        finally:
            hqtest.broker("start")
        log("spool episode: broker started")
        hqtest.wait_for(lambda: metric_sum(self.gw_metrics,
                                           "hookmq_gateway_spool_quarantine_records") == 1, 120,
                        what="the poison record in the quarantine")
        hqtest.wait_for(lambda: metric_sum(self.gw_metrics, "hookmq_gateway_spool_events") == 0,
                        120, what="the spool drained")
        r = subprocess.run([hqtest.binary("hookmq-gateway"), "-c", self.config,
                            "--spool-quarantine"], capture_output=True, text=True, timeout=60)
        ids = [l for l in r.stdout.splitlines() if self.src in l]
        if r.returncode != 0 or len(ids) != 1 or self.poison not in ids[0]:
            self.fail("--spool-quarantine (exit %d) does not list exactly the poison record:\n%s%s"
                      % (r.returncode, r.stdout[-2000:], r.stderr[-500:]))
        self.figures["quarantined"] = int(metric_sum(self.gw_metrics,
                                                     "hookmq_gateway_spool_quarantined_total") or 0)
        log("spool episode: drained, quarantine holds the poison record")

    def snapshot_archive(self):
        """Ids of our source that a query finds now (retention deletes them later)."""
        r = subprocess.run([hqtest.binary("hookmq-archive"), "query", "-c", self.config,
                            "--source", self.src, "--kind", "event",
                            "--from", rfc3339(self.t0 - 600), "--limit", "100000000"],
                           capture_output=True, timeout=300)
        if r.returncode != 0:
            self.fail("hookmq-archive query exit %d: %s" % (r.returncode, r.stderr[-500:]))
        found = collections.Counter()
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            if line.strip():
                found[json.loads(line)["id"]] += 1
        for k, v in found.items():
            self.archived[k] = max(self.archived[k], v)
        return found

    def archive_retention(self):
        """Query the archive, restart the logger, and wait until its start-up retention has
        deleted every segment whose hour ended more than keep_days (1) ago by its clock."""
        n = len(self.snapshot_archive())
        with self.lock:
            cutoff = time.time() + self.offset - 86400
        expired = lambda: [s for s in self.segments() if self.segment_end(s) < cutoff]  # noqa
        old = len(expired())
        self.restart("archive")
        try:
            hqtest.wait_for(lambda: not expired(), 60, what="expired segments deleted")
        except AssertionError as e:
            self.fail("retention: %s" % e)
        log("archive restarted: %d ids seen before; %d expired segment files deleted"
            % (n, old))

    @staticmethod
    def segment_end(rel):
        """The end (epoch s) of the hour a segment (YYYY/MM/DD/HH[.n].jsonl[.zst]) is named after."""
        y, m, d, h = rel.split("/")[:3] + [rel.split("/")[3][:2]]
        return datetime.datetime(int(y), int(m), int(d), int(h),
                                 tzinfo=datetime.timezone.utc).timestamp() + HOUR

    def log_count(self, prefix, text):
        n = 0
        for f in os.listdir(self.dir):
            if f.startswith(prefix) and f.endswith(".log"):
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    n += fh.read().count(text)
        return n

    def segments(self):
        out = []
        for root, _d, files in os.walk(self.archive_dir):
            if ".replay" in root:
                continue
            out.extend(os.path.relpath(os.path.join(root, f), self.archive_dir) for f in files
                       if f.endswith(".jsonl") or f.endswith(".jsonl.zst"))
        return out

    def replay_episode(self):
        with self.lock:
            steps = list(self.clock_steps)
        if len(steps) < 4:
            self.fail("replay: fewer than 4 clock steps so far")
            return
        # The window ends 5 s before the last clock step: the logger wrote every record
        # received until then (its lag is well under that) into segments that step closed. An
        # open segment is chosen by its name's hour, and the logger's clock runs days ahead of
        # the gateway's here: the window's records must all be in closed, indexed segments
        # (docs/archive.md: a record later than HQ_ARCHIVE_LATE_MS is found once its segment
        # is closed).
        t_from = steps[-4] - 1.0
        t_to = steps[-1] - 5.0
        hqtest.wait_for(lambda: len([s for s in self.segments() if s.endswith(".jsonl")]) <= 1,
                        30, interval=0.2, what="the segments closed by the last step compressed")
        zst = [s for s in self.segments() if s.endswith(".zst")]
        log("replay of %s .. %s (%d segment boundaries inside; %d compressed segments now)"
            % (rfc3339(t_from), rfc3339(t_to), sum(1 for s in steps if t_from < s < t_to),
               len(zst)))
        p = subprocess.Popen([hqtest.binary("hookmq-replay"), "-c", self.config,
                              "--from", rfc3339(t_from), "--to", rfc3339(t_to),
                              "--source", self.src, "--to-consumer", self.consumer["c"],
                              "--ignore-bindings", "--rate", "500", "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # the open segment is closed and compressed while the replay scans
        self.step_clock()
        out = p.communicate(timeout=600)[0].decode("utf-8", "replace")
        if p.returncode != 0:
            self.fail("hookmq-replay exit %d:\n%s" % (p.returncode, out[-2000:]))
            return
        must, may = set(), set()
        for eid, iv in self.intervals.items():
            for a, b in iv:
                if a >= t_from and b < t_to:
                    must.add(eid)
                if b >= t_from and a < t_to:
                    may.add(eid)
        got = collections.Counter(m["properties"]["message_id"]
                                  for m in hqtest.get_messages("hookmq." + self.consumer["c"]))
        missing = must - set(got)
        extra = set(got) - may
        self.figures["replay window (ids)"] = len(got)
        if missing or extra or not must:
            self.fail("replay: %d ids of the window, %d delivered, missing %s, outside %s"
                      % (len(must), len(got), sorted(missing)[:10], sorted(extra)[:10]))
        log("replay: %d ids expected, %d delivered" % (len(must), len(got)))

    # ---- audit
    def processed(self):
        c = {"a": collections.Counter(), "b": collections.Counter()}
        with open(self.record) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    for k in ("a", "b"):
                        if parts[0] == self.consumer[k]:
                            c[k][parts[1]] += 1
        return c

    def dlq(self, k):
        return collections.Counter(m["properties"].get("message_id")
                                   for m in hqtest.get_messages("hookmq.%s.dlq" % self.consumer[k]))

    def audit(self):
        log("audit: waiting for both consumers to settle %d accepted ids" % len(self.accepted))
        dlq = {"a": collections.Counter(), "b": collections.Counter()}
        proc = {}

        def settled():
            for k in ("a", "b"):
                dlq[k].update(self.dlq(k))
            proc.update(self.processed())
            return all(not (self.accepted - set(proc[k]) - set(dlq[k])) for k in ("a", "b"))
        try:
            hqtest.wait_for(settled, 180, interval=2.0, what="every accepted id settled")
        except AssertionError:
            pass
        for k in ("a", "b"):
            lost = self.accepted - set(proc[k]) - set(dlq[k])
            if lost:
                self.fail("consumer %s: %d accepted ids neither processed nor parked: %s"
                          % (k, len(lost), sorted(lost)[:10]))
            self.figures["processed by -%s (ids)" % k] = len(set(proc[k]))
            self.figures["parked in -%s's DLQ" % k] = sum(dlq[k].values())
            self.figures["handled twice by -%s" % k] = sum(1 for v in proc[k].values() if v > 1)
        if self.poison in proc["a"] or self.poison in proc["b"]:
            self.fail("the poison event reached a worker")
        try:
            hqtest.wait_for(lambda: not (self.accepted - set(self.snapshot_archive())
                                         - set(self.archived)), 180, interval=3.0,
                            what="every accepted id archived")
        except AssertionError:
            pass
        lost = self.accepted - set(self.archived)
        if lost:
            self.fail("archive: %d accepted ids never found: %s" % (len(lost), sorted(lost)[:10]))
        self.figures["archived (ids)"] = len(self.accepted & set(self.archived))
        self.figures["lost"] = len(lost) + sum(
            len(self.accepted - set(proc[k]) - set(dlq[k])) for k in ("a", "b"))
        self.figures["exact replays answered from the replay cache"] = int(
            metric_sum(self.gw_metrics, "hookmq_gateway_replay_cache_hits_total") or 0)
        if not self.figures["exact replays answered from the replay cache"]:
            self.fail("no exact replay was answered from the gateway's replay cache")
        hits = metric_sum(self.wk_metrics["b"], "hookmq_worker_dedupe_hits_total") or 0
        self.figures["dedupe hits of -b (last run)"] = int(hits)
        if not hits:
            self.fail("the dedupe ledger of -b caught no duplicate")

    # ---- the run
    def run(self):
        hqtest.broker("start")
        hqtest.run_dlx_apply(self.config)
        hqtest.delete_queue(self.fullq)
        hqtest.declare_queue(self.fullq, ["%s.poison" % self.src],
                             arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        # persistent: the queue must stay full across the broker restart of the spool episode
        hqtest.publish_via_api("%s.poison" % self.src, b"filler", {"delivery_mode": 2},
                               exchange="hookmq.events")
        hqtest.wait_for(lambda: hqtest.queue_depth(self.fullq) == 1, 30, what="full queue")
        for role in ("archive", "worker-a", "worker-b", "gateway"):
            self.start(role)
        self.t0 = time.time()
        step = max(1.0, self.duration / 100.0)  # > 24 fake hours before the retention at 0.30
        log("src=%s dir=%s duration=%ds rate=%d/s clock step 1 h every %.1f s"
            % (self.src, self.dir, self.duration, self.rate, step))
        bg = [threading.Thread(target=f, daemon=True) for f in
              (self.load_loop, self.sample_loop, lambda: self.clock_loop(step))]
        for t in bg:
            t.start()
        # every episode in the first half: the second half is steady load only, the window
        # of the growth fit (a burst, such as a spool drain or a replay, raises a program's
        # allocator high-water mark once: a step, not a leak)
        plan = [(0.05, lambda: self.restart("worker-a")),
                (0.10, lambda: self.restart("worker-b")),
                (0.14, self.spool_episode),
                (0.22, lambda: self.restart("worker-a")),
                (0.25, lambda: self.restart("worker-b")),
                (0.30, self.archive_retention),
                (0.36, self.step_back),
                (0.40, self.replay_episode)]
        for frac, action in plan:
            delay = self.t0 + frac * self.duration - time.time()
            if delay > 0:
                time.sleep(delay)
            self.supervise()
            action()
        while time.time() < self.t0 + self.duration:
            time.sleep(min(5.0, max(0.0, self.t0 + self.duration - time.time())))
            self.supervise()
        self.t_end = time.time()
        self.stop_load.set()
        self.stop_bg.set()
        for t in bg:
            t.join(60)
        self.sample()
        self.audit()
        self.figures["archive clock steps (1 h)"] = len(self.clock_steps)
        self.figures["clock steps back"] = self.back_steps
        self.archive_retention()
        for what, text in (("segments closed", "segment closed "),
                           ("segments compressed", "segment compressed "),
                           ("segments deleted by retention", "retention: segment deleted "),
                           ("compression errors", "compression failed")):
            self.figures[what] = self.log_count("archive-", text)
        self.figures["segment files now"] = len(self.segments())
        if not self.figures["segments deleted by retention"]:
            self.fail("retention deleted no segment")
        if self.figures["compression errors"]:
            self.fail("the archive logged compression errors")
        if self.figures["segments compressed"] < 10:
            self.fail("fewer than 10 segments compressed")

    def supervise(self):
        with self.lock:
            procs = dict(self.procs)
        for role, p in procs.items():
            if not p.alive():
                self.fail("%s exited (%s) while it should run:\n%s"
                          % (role, p.p.returncode, p.output()[-3000:]))
                self.restarts[role] += 1
                self.start(role)

    def stop_all(self):
        with self.lock:
            procs = dict(self.procs)
        for role in ("gateway", "worker-a", "worker-b", "archive"):
            p = procs.get(role)
            if p is None:
                continue
            try:
                if p.alive():
                    rc = p.stop(timeout=60)
                    if rc != 0:
                        self.fail("%s exited %s on SIGTERM at the end" % (role, rc))
                elif not p.log.closed:
                    p.log.close()
            except AssertionError as e:
                self.fail("%s: %s" % (role, e))

    def cleanup_broker(self):
        for k in ("a", "b", "c"):
            q = "hookmq." + self.consumer[k]
            for name in (q, q + ".dlq", q + ".retry.200ms"):
                try:
                    hqtest.delete_queue(name)
                except Exception:  # noqa: BLE001
                    pass
        try:
            hqtest.delete_queue(self.fullq)
        except Exception:  # noqa: BLE001
            pass

    def report(self, growth):
        dur = self.t_end - self.t0
        f = collections.OrderedDict()
        f["duration"] = "%d s (HQ_SOAK_SECONDS=%d), broker %s" % (dur, self.duration,
                                                                 hqtest.BROKER_VERSION)
        f["requests"] = "%d at %d/s: %s" % (sum(self.sent.values()), self.rate, ", ".join(
            "%s %d" % kv for kv in sorted(self.sent.items())))
        f["answers"] = ", ".join("%s %d" % (k, v) for k, v in sorted(
            self.answers.items(), key=lambda kv: str(kv[0])))
        f["accepted ids"] = len(self.accepted)
        f["worker/archive restarts (SIGTERM)"] = ", ".join(
            "%s %d" % kv for kv in sorted(self.restarts.items()))
        f.update(self.figures)
        f["dedupe ledger lines (max / bound)"] = "%d / %d" % (self.ledger_max, self.ledger_bound)
        print("\n| figure | value |\n| --- | --- |")
        for k, v in f.items():
            print("| %s | %s |" % (k, v))
        print("\n| process | RSS slope (MiB/h) | fds slope (/h) | RSS min..max (MiB) | "
              "fds at end | samples fitted |\n| --- | ---: | ---: | ---: | ---: | ---: |")
        for role, (rss, fds, _rss_end, fd_end, n, lo, hi) in growth.items():
            print("| %s | %+.2f | %+.2f | %.1f..%.1f | %d | %d |"
                  % (role, rss, fds, lo, hi, fd_end, n))
        print(flush=True)


def main():
    if not os.path.exists(LIBFAKETIME):
        print("soak SKIPPED: libfaketime missing (%s; apt-get install faketime)" % LIBFAKETIME)
        return SKIP
    if os.environ.get("HQ_SANITIZE"):
        print("soak SKIPPED: a sanitizer build (libfaketime must not come before its runtime)")
        return SKIP
    duration = max(120, int(os.environ.get("HQ_SOAK_SECONDS", "1200")))
    rate = max(1, min(200, int(os.environ.get("HQ_SOAK_RATE", "20"))))
    s = Soak(duration, rate)
    ok = False
    growth = {}
    try:
        s.run()
        growth = s.growth()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        s.failures.append("exception (see above)")
    finally:
        s.stop_load.set()
        s.stop_bg.set()
        s.stop_all()
        try:
            hqtest.broker("start")
        except Exception:  # noqa: BLE001
            pass
    if not hasattr(s, "t_end"):
        s.t_end = time.time()
    s.report(growth)
    ok = not s.failures
    if ok and not os.environ.get("HQ_SOAK_KEEP"):
        s.cleanup_broker()
        shutil.rmtree(s.dir, ignore_errors=True)
    else:
        log("kept %s" % s.dir)
        if not ok:
            for role, p in sorted(s.procs.items()):
                sys.stdout.write("---- %s (last lines)\n%s\n" % (role, p.output()[-2500:]))
    print("soak %s: %s" % ("PASSED" if ok else "FAILED", "; ".join(s.failures[:10]) or
                           "zero loss, no growth"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
