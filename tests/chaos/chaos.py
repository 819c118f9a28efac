#!/usr/bin/env python3
"""chaos: end-to-end audit harness for hookmq's fault matrix (python3 standard library only).

One run = one row: start a gateway (with spool), one worker (test plugin `record`, whose side
effect is a line "<consumer> <id> <attempt>" per processed event) and the archive logger, all
against the private test broker (scripts/broker, HQ_BROKER_* env) on 127.0.0.1; drive N signed
github webhooks from several threads while injecting ONE fault; then audit by (source, id):

  - every id answered 2xx is processed (in the record file) or parked in the consumer's DLQ,
    and is in the archive (`hookmq-archive query --source S --kind event`);
  - no id answered with a definite non-2xx appears anywhere ("unexpected"); ids whose request
    got no answer at all (connection reset by a killed gateway) may or may not appear: they are
    counted as "unanswered" and "unanswered_seen" (the client would retry them);
  - duplicates (an id processed more than once, or archived more than once) are counted and
    reported, never silent.

The harness plays the operator's supervisor (systemd Restart=always): a program that exits
while it should run is restarted and counted in restarts=.

Prints ONE row:
  row=<name> sent=.. accepted=.. processed=.. dlq=.. archived=.. lost=0 unexpected=0 duplicates=.. seconds=..
and exits 1 on any loss or unexpected id, 77 when the row cannot run here (skipped).

Usage: chaos.py ROW [--n 400] [--threads 6]     (chaos.py --list for the rows)
Every loop is bounded in count and time; traffic goes to 127.0.0.1 only.
"""
import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import hqtest  # noqa: E402

SECRET = "chaos-gh-secret"
SKIP = 77


def log(*a):
    print("[chaos %s]" % time.strftime("%H:%M:%S"), *a, flush=True)


def beam_pid():
    with open(os.path.join(os.environ["HQ_BROKER_DIR"], "rabbitmq.pid")) as f:
        return int(f.read().strip())


class Rig:
    """Gateway + worker + archive logger sharing one generated config."""

    def __init__(self, row, handler="record", handler_opts=None, uris=None, heartbeat_s=2,
                 confirm_timeout_ms=1000, spool_dir=None, max_attempts=3, concurrency=1,
                 prefetch=4, marked=(), workdir=None):
        self.row = row
        self.src = "cx%s%d" % (row.replace("_", "")[:10], random.randint(1000, 9999))
        self.consumer = self.src + "-w"
        self.queue = "hookmq." + self.consumer
        self.dlq = self.queue + ".dlq"
        self.dir = workdir or tempfile.mkdtemp(prefix="hq-chaos-%s-" % row)
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.marked = set(marked)  # event numbers whose body carries "mark": true
        self.record = os.path.join(self.dir, "record.txt")
        self.spool = spool_dir or os.path.join(self.dir, "spool")
        self.archive_dir = os.path.join(self.dir, "archive")
        self.port = hqtest.free_port()
        self.gw_metrics = hqtest.free_port()
        self.wk_metrics = hqtest.free_port()
        self.ar_metrics = hqtest.free_port()
        self.uris = uris or [hqtest.AMQP_URI]
        self.handler = handler
        self.handler_opts = dict(handler_opts or {})
        if handler == "record":
            self.handler_opts.setdefault("file", self.record)
        for k, v in self.handler_opts.items():
            self.handler_opts[k] = v.replace("@RECORD@", self.record)
        self.heartbeat_s = heartbeat_s
        self.confirm_timeout_ms = confirm_timeout_ms
        self.max_attempts = max_attempts
        self.config = os.path.join(self.dir, "hookmq.conf")
        self.direct_config = os.path.join(self.dir, "hookmq-direct.conf")
        self.gw = self.wk = self.ar = None
        self.restarts = collections.Counter()
        self.supervise = True
        self.lock = threading.RLock()  # supervisor vs. faults that kill and restart themselves
        self.load_done = threading.Event()
        self.results = {}
        self.answered_at = {}
        self.fault_end = None
        self.t0 = time.time()
        self.notes = []
        self.extra = collections.OrderedDict()
        self.write(self.config, self.uris)
        self.write(self.direct_config, [hqtest.AMQP_URI])

    def plugin(self, name):
        if name in ("exec", "http", "log"):
            return name
        return os.path.join(hqtest.BUILD, "tests", "handlers", "hq_handler_%s.so" % name)

    def write(self, path, uris):
        opts = "".join(' %s = "%s";' % (k, v.replace("\\", "\\\\").replace('"', '\\"'))
                       for k, v in self.handler_opts.items())
        hqtest.write_config(path, """
broker = {
  uris = [ %s ];
  exchange = "hookmq.events";
  queue_type = "quorum";
  heartbeat_s = %d;
};
gateway = {
  listen = "127.0.0.1:%d";
  metrics_listen = "127.0.0.1:%d";
  max_body_bytes = 65536;
  max_in_flight = 1024;
  confirm_timeout_ms = %d;
  spool_dir = "%s";
};
sources = ( { name = "%s"; scheme = "github"; secrets = [ "%s" ]; } );
consumers = (
  { name = "%s"; bindings = [ "%s.#" ]; handler = "%s";
    options = {%s };
    prefetch = %d; concurrency = %d; metrics_listen = "127.0.0.1:%d";
    retry = { delays = [ "200ms" ]; max_attempts = %d; }; }
);
archive = { dir = "%s"; keep_days = 7; metrics_listen = "127.0.0.1:%d"; batch_max = 64; batch_ms = 50; };
log = { format = "text"; level = "info"; };
""" % (", ".join('"%s"' % u for u in uris), self.heartbeat_s, self.port, self.gw_metrics,
            self.confirm_timeout_ms, self.spool, self.src, SECRET, self.consumer, self.src,
            self.plugin(self.handler), opts, self.prefetch, self.concurrency, self.wk_metrics,
            self.max_attempts,
            self.archive_dir, self.ar_metrics))

    # ---- processes
    def apply(self):
        hqtest.run_dlx_apply(self.direct_config)

    def start_gateway(self, wait=True):
        self.gw = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", self.config],
                              name="gateway", workdir=self.dir)
        if wait:
            hqtest.wait_http(self.port, timeout=30, proc=self.gw)

    def start_worker(self, wait=True):
        self.wk = hqtest.Proc([hqtest.binary("hookmq-worker"), "-c", self.config, "--consumer",
                               self.consumer], name="worker", workdir=self.dir,
                              env={"TMPDIR": self.dir})
        if wait:
            hqtest.wait_for(lambda: not self.wk.alive() or "consuming" in self.wk.output(), 30,
                            what="worker consuming")

    def start_archive(self, wait=True):
        self.ar = hqtest.Proc([hqtest.binary("hookmq-archive"), "run", "-c", self.config],
                              name="archive", workdir=self.dir)
        if wait:
            hqtest.wait_for(lambda: not self.ar.alive() or "consuming" in self.ar.output(), 30,
                            what="archive consuming")

    def start_all(self):
        self.apply()
        self.start_archive()
        self.start_worker()
        self.start_gateway()

    def check_alive(self):
        """Supervisor: restart what exited (counted)."""
        with self.lock:
            if self.supervise:
                self._check_alive()

    def _check_alive(self):
        for name, start in (("gw", self.start_gateway), ("wk", self.start_worker),
                            ("ar", self.start_archive)):
            p = getattr(self, name)
            if p is not None and not p.alive():
                self.restarts[name] += 1
                if not p.log.closed:
                    p.log.close()
                log("supervisor: %s exited (%s), restarting" % (name, p.p.returncode))
                try:
                    start(wait=False)
                except Exception as e:  # noqa: BLE001
                    log("supervisor: restart of %s failed: %s" % (name, e))

    def stop_all(self):
        self.supervise = False
        for p in (self.gw, self.wk, self.ar):
            if p is None:
                continue
            try:
                if p.alive():
                    p.stop(timeout=20)
                elif not p.log.closed:
                    p.log.close()
            except AssertionError:
                pass
            except Exception:  # noqa: BLE001
                try:
                    p.p.kill()
                except OSError:
                    pass

    def cleanup_broker(self):
        for qn in (self.queue, self.dlq, self.queue + ".retry.200ms"):
            try:
                hqtest.delete_queue(qn)
            except Exception:  # noqa: BLE001
                pass

    # ---- load
    def post(self, i):
        doc = {"i": i, "row": self.row, "pad": "x" * 100}
        if i in self.marked:
            doc["mark"] = True
        body = json.dumps(doc).encode()
        eid = "%s-%05d" % (self.src, i)
        try:
            st, _, _ = hqtest.http_request(self.port, "POST", "/webhooks/" + self.src, body,
                                           hqtest.sign_github(SECRET, body, "push", eid),
                                           timeout=30)
        except OSError as e:
            return eid, None, str(e)
        return eid, st, None

    def load(self, n, threads, results, stop_at, duration):
        lock = threading.Lock()
        pause = max(0.0, threads * duration / float(n))  # spread the load over ~duration s
        it = iter(range(n))

        def run():
            while time.time() < stop_at:
                with lock:
                    i = next(it, None)
                if i is None:
                    return
                eid, st, err = self.post(i)
                if st is None and err and "refused" in err:
                    # gateway down (killed): nothing was sent; retry this id a few times
                    for _ in range(40):
                        time.sleep(0.25)
                        eid, st, err = self.post(i)
                        if st is not None or not (err and "refused" in err):
                            break
                with lock:
                    results[eid] = st
                    self.answered_at[eid] = time.time()
                time.sleep(pause)

        ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
        for t in ts:
            t.start()
        return ts

    # ---- audit
    def processed(self):
        c = collections.Counter()
        try:
            with open(self.record) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == self.consumer:
                        c[parts[1]] += 1
        except FileNotFoundError:
            pass
        return c

    def dlq_ids(self):
        try:
            msgs = hqtest.mgmt("POST", "/queues/%2f/" + hqtest.q(self.dlq) + "/get",
                               {"count": 5000, "ackmode": "ack_requeue_true", "encoding": "auto",
                                "truncate": 1000}, ok=(200,), timeout=30) or []
        except Exception:  # noqa: BLE001
            return collections.Counter()
        return collections.Counter(m["properties"].get("message_id") for m in msgs)

    def archived(self):
        r = subprocess.run([hqtest.binary("hookmq-archive"), "query", "-c", self.config,
                            "--source", self.src, "--kind", "event", "--from", "-2h",
                            "--limit", "1000000"], capture_output=True, timeout=120)
        c = collections.Counter()
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            if line.strip():
                try:
                    c[json.loads(line)["id"]] += 1
                except (ValueError, KeyError):
                    pass
        return c

    def metric_sum(self, port, name):
        """Sum of a metric's samples (None when the endpoint does not answer)."""
        try:
            text = hqtest.http_request(port, "GET", "/metrics", timeout=3)[2].decode()
        except OSError:
            return None
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.split()[-1])
        return total

    def spool_events(self):
        try:
            for line in hqtest.http_request(self.gw_metrics, "GET", "/metrics",
                                            timeout=3)[2].decode().splitlines():
                if line.startswith("hookmq_gateway_spool_events"):
                    return float(line.split()[-1])
        except OSError:
            pass
        return None


def run_row(rig, fault, n, threads, budget, duration):
    t0 = rig.t0 = time.time()
    results = rig.results
    rig.start_all()
    stop_at = t0 + budget
    ts = rig.load(n, threads, results, stop_at, duration)
    fault_err = []

    def do_fault():
        try:
            fault(rig)
        except Exception:  # noqa: BLE001
            fault_err.append(traceback.format_exc())
        finally:
            rig.fault_end = time.time()

    ft = threading.Thread(target=do_fault, daemon=True)
    time.sleep(1.0)
    ft.start()
    end = time.time() + budget
    while time.time() < end and (ft.is_alive() or any(t.is_alive() for t in ts)):
        if not any(t.is_alive() for t in ts):
            rig.load_done.set()
        rig.check_alive()
        time.sleep(0.5)
    rig.load_done.set()
    if fault_err:
        raise RuntimeError("fault injection failed:\n" + fault_err[0])
    if ft.is_alive() or any(t.is_alive() for t in ts):
        raise RuntimeError("load or fault still running after %ds" % budget)
    rig.check_alive()

    accepted = {i for i, st in results.items() if st is not None and 200 <= st < 300}
    refused = {i for i, st in results.items() if st is not None and not 200 <= st < 300}
    unanswered = {i for i, st in results.items() if st is None}
    log("answers:", dict(collections.Counter(results.values())))
    after = [i for i in accepted if rig.answered_at.get(i, 0) > (rig.fault_end or 0)]

    # settle: wait (bounded) until every accepted id is processed-or-parked and archived
    settle_end = time.time() + 120
    while True:
        rig.check_alive()
        proc, dlq, arch = rig.processed(), rig.dlq_ids(), rig.archived()
        done = set(proc) | set(dlq)
        if accepted <= done and accepted <= set(arch) and rig.spool_events() in (0, None):
            break
        if time.time() > settle_end:
            log("settle timed out: not processed/parked=%d not archived=%d spool=%s"
                % (len(accepted - done), len(accepted - set(arch)), rig.spool_events()))
            break
        time.sleep(1.0)
    time.sleep(2.0)  # late duplicates / unexpected ids get a chance to show up
    proc, dlq, arch = rig.processed(), rig.dlq_ids(), rig.archived()
    seen = set(proc) | set(dlq) | set(arch)
    lost_proc = accepted - (set(proc) | set(dlq))
    lost_arch = accepted - set(arch)
    unexpected = (seen & refused) | (seen - accepted - refused - unanswered)
    dups = sum(c - 1 for c in proc.values() if c > 1) + sum(c - 1 for c in arch.values() if c > 1)
    row = ("row=%s sent=%d accepted=%d processed=%d dlq=%d archived=%d lost=%d unexpected=%d "
           "duplicates=%d unanswered=%d unanswered_seen=%d restarts=%d seconds=%.0f"
           % (rig.row, len(results), len(accepted), len(set(proc) & accepted),
              len(set(dlq) & accepted), len(set(arch) & accepted), len(lost_proc | lost_arch),
              len(unexpected), dups, len(unanswered), len(seen & unanswered),
              sum(rig.restarts.values()), time.time() - t0))
    spooled = rig.metric_sum(rig.gw_metrics, "hookmq_gateway_spooled_total")
    row += " spooled=%s accepted_after_fault=%d" % (
        "?" if spooled is None else "%d" % spooled, len(after))
    for k, v in rig.extra.items():
        row += " %s=%s" % (k, v)
    if rig.marked:
        mids = {"%s-%05d" % (rig.src, i) for i in rig.marked} & accepted
        row += " marked=%d marked_in_dlq=%d marked_processed=%d" % (
            len(mids), len(mids & set(dlq)), len(mids & set(proc)))
    if lost_proc:
        log("not processed nor parked: %s" % sorted(lost_proc)[:20])
    if lost_arch:
        log("not archived: %s" % sorted(lost_arch)[:20])
    if unexpected:
        log("unexpected: %s" % sorted(unexpected)[:20])
    return row, not (lost_proc or lost_arch or unexpected)


# ---- faults ---------------------------------------------------------------------------------

def f_broker_stop(rig):
    hqtest.broker("stop")
    time.sleep(3.0)
    hqtest.broker("start")


def f_broker_kill9(rig):
    pid = beam_pid()
    log("kill -9 beam pid %d" % pid)
    os.kill(pid, signal.SIGKILL)
    hqtest.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, what="beam gone")
    time.sleep(2.0)
    hqtest.broker("start")


def f_gateway_kill9_spool(rig):
    hqtest.broker("stop")
    hqtest.wait_for(lambda: spool_files(rig) > 0, 20, what="a non-empty spool")
    time.sleep(0.5)
    hqtest.wait_for(lambda: (rig.spool_events() or 0) >= 20, 20, what="20 spooled events")
    log("kill -9 gateway with %s spooled events in %d files"
        % (rig.spool_events(), spool_files(rig)))
    with rig.lock:
        rig.gw.kill9()
        n = spool_files(rig)
        if n == 0:
            raise RuntimeError("spool empty at kill time")
        rig.start_gateway(wait=True)  # broker still down: the spool stays
        rig.restarts["gw"] += 1
    time.sleep(1.0)
    hqtest.broker("start")


def spool_files(rig):
    n = 0
    for _root, _d, files in os.walk(rig.spool):
        n += len(files)
    return n


def f_worker_kill9(rig):
    for _ in range(3):
        time.sleep(1.5)
        log("kill -9 worker")
        with rig.lock:
            rig.wk.kill9()
            time.sleep(0.5)
            rig.start_worker(wait=False)
            rig.restarts["wk"] += 1


def f_archive_kill9(rig):
    for _ in range(3):
        time.sleep(1.5)
        log("kill -9 archive logger")
        with rig.lock:
            rig.ar.kill9()
            time.sleep(0.5)
            rig.start_archive(wait=False)
            rig.restarts["ar"] += 1


def f_disk_alarm(rig):
    hqtest.broker("ctl", "set_disk_free_limit", "100000GB")
    time.sleep(6.0)
    hqtest.broker("ctl", "set_disk_free_limit", "50MB")


def f_memory_alarm(rig):
    """An absolute watermark far below what the node uses raises the memory alarm."""
    hqtest.broker("ctl", "set_vm_memory_high_watermark", "absolute", "1MB")
    try:
        hqtest.wait_for(lambda: alarms() != [], 20, interval=0.5, what="memory alarm raised")
        log("alarms: %s" % alarms())
        time.sleep(6.0)
    finally:
        hqtest.broker("ctl", "set_vm_memory_high_watermark", "absolute", "1GB")
    hqtest.wait_for(lambda: alarms() == [], 30, interval=0.5, what="memory alarm cleared")
    rig.extra["alarm_seen"] = 1


def alarms():
    """Resource alarms the node reports (management API /api/nodes)."""
    out = []
    for n in hqtest.mgmt("GET", "/nodes", ok=(200,), timeout=10) or []:
        if n.get("mem_alarm"):
            out.append("memory")
        if n.get("disk_free_alarm"):
            out.append("disk")
    return out


def f_archive_full(rig):
    """Archive dir on a tiny tmpfs: the logger pauses on ENOSPC, then space is added."""
    hqtest.wait_for(lambda: (rig.metric_sum(rig.ar_metrics, "hookmq_archive_disk_full") or 0) >= 1,
                    40, interval=0.25, what="the archive logger reporting a full disk")
    log("archive disk full: %s" % subprocess.run(["df", "-k", rig.archive_dir],
                                                 capture_output=True, text=True)
        .stdout.splitlines()[-1])
    time.sleep(5.0)  # the gateway keeps accepting: hookmq.archive holds the records
    r = subprocess.run(["mount", "-o", "remount,size=64m", rig.archive_dir], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("remount failed: %s" % r.stderr)
    log("archive tmpfs grown to 64m")
    hqtest.wait_for(lambda: rig.metric_sum(rig.ar_metrics, "hookmq_archive_disk_full") == 0, 30,
                    interval=0.25, what="the archive logger resuming")
    rig.extra["disk_full_batches"] = int(
        rig.metric_sum(rig.ar_metrics, "hookmq_archive_disk_full_total") or 0)


def archive_intact(rig):
    """After a disk-full pause: the logger never exited and no segment has a torn line."""
    r = subprocess.run([hqtest.binary("hookmq-archive"), "query", "-c", rig.config, "--from",
                        "-2h", "--limit", "1000000"], capture_output=True, text=True, timeout=120)
    bad = [ln for ln in r.stderr.splitlines() if "torn" in ln or "corrupt" in ln]
    log("archive check: exit %d, %d torn/corrupt warnings, logger restarts %d"
        % (r.returncode, len(bad), rig.restarts["ar"]))
    for ln in bad[:5]:
        log("  " + ln)
    return r.returncode == 0 and not bad and rig.restarts["ar"] == 0


def f_none(rig):
    """The fault is in the traffic itself (marked events)."""


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def f_queue_deleted(rig):
    time.sleep(3.0)
    t_del = time.time()
    log("DELETE work queue %s through the management API" % rig.queue)
    hqtest.delete_queue(rig.queue)
    time.sleep(4.0)  # > 2 heartbeats: the worker has noticed
    log("hookmq-dlx apply")
    rig.apply()
    t_apply = time.time()
    # what sat in the deleted queue, and what was published while it was missing, reached
    # only the archive: the operator replays that window to the consumer.
    rig.load_done.wait(120)
    accepted = lambda: {i for i, st in list(rig.results.items()) if st and 200 <= st < 300}
    hqtest.wait_for(lambda: accepted() <= set(rig.archived()), 60, interval=1.0,
                    what="archive caught up")
    # what the deleted queue cost before the operator's replay (the worker drained the rest)
    prev, stable_since, end = -1, time.time(), time.time() + 30
    while time.time() < end and time.time() - stable_since < 3.0:
        cur = len(rig.processed())
        if cur != prev:
            prev, stable_since = cur, time.time()
        time.sleep(0.5)
    missing = accepted() - set(rig.processed()) - set(rig.dlq_ids())
    rig.extra["missing_before_replay"] = len(missing)
    log("before replay: %d accepted ids not processed (were in the deleted queue or published "
        "while it was missing); all of them are in the archive" % len(missing))
    argv = [hqtest.binary("hookmq-replay"), "-c", rig.direct_config, "--source", rig.src,
            "--from", rfc3339(t_del - 15), "--to", rfc3339(t_apply + 2),
            "--to-consumer", rig.consumer, "-q"]
    log("operator: %s" % " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv)))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("hookmq-replay failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    for line in rig.wk.output().splitlines():
        if "cancel" in line.lower() or "re-subscrib" in line.lower():
            rig.notes.append("worker: " + line.strip()[:200])


def f_proxy_freeze(rig):
    time.sleep(3.0)
    log("proxy: freeze (no bytes, no FIN/RST) for 8 s = 4 heartbeats")
    rig.proxy.freeze()
    time.sleep(8.0)
    rig.proxy.thaw()
    log("proxy: thawed")


def f_proxy_reset(rig):
    for _ in range(8):
        time.sleep(1.5)
        n = rig.proxy.reset_random(0.5)
        log("proxy: RST %d of the live connections" % n)


def f_spool_full(rig):
    """Broker stopped: the gateway spools into a tiny tmpfs until ENOSPC, then answers 503."""
    hqtest.broker("stop")
    try:
        hqtest.wait_for(lambda: 503 in list(rig.results.values()), 40, interval=0.5,
                        what="503 from a full spool")
        log("spool full: %s" % subprocess.run(["df", "-k", rig.spool], capture_output=True,
                                              text=True).stdout.splitlines()[-1])
        time.sleep(2.0)
    finally:
        hqtest.broker("start")


EXEC_RECORD = 'echo "$HOOKMQ_CONSUMER $HOOKMQ_EVENT_ID $HOOKMQ_ATTEMPT" >> @RECORD@'

# row -> (fault, Rig options, extras)
ROWS = collections.OrderedDict([
    ("broker_stop", (f_broker_stop, {}, {})),
    ("broker_kill9", (f_broker_kill9, {}, {})),
    ("gateway_kill9_spool", (f_gateway_kill9_spool, {}, {})),
    ("worker_kill9", (f_worker_kill9, dict(
        handler="exec", concurrency=4, prefetch=8,
        handler_opts={"command": "sleep 0.1; %s; sleep 0.1" % EXEC_RECORD, "timeout": "10s"}),
        {})),
    ("archive_kill9", (f_archive_kill9, {}, {})),
    ("queue_deleted", (f_queue_deleted, {}, {})),
    ("handler_hang", (f_none, dict(
        handler="exec", concurrency=4, prefetch=8, marked=range(20, 400, 40),
        handler_opts={"command": "if grep -q '\"mark\": true'; then sleep 3600; fi; " + EXEC_RECORD,
                      "timeout": "2s"}), {})),
    ("poison_crash", (f_none, dict(
        handler="exec", concurrency=1, prefetch=4, marked=(60, 200, 330),
        handler_opts={"command": "if grep -q '\"mark\": true'; then kill -ABRT $PPID; sleep 5; "
                                 "exit 75; fi; " + EXEC_RECORD}), {})),
    ("disk_alarm", (f_disk_alarm, {}, {})),
    ("memory_alarm", (f_memory_alarm, {}, {})),
    ("proxy_freeze", (f_proxy_freeze, {}, {"proxy": True})),
    ("proxy_reset", (f_proxy_reset, {}, {"proxy": True})),
    ("spool_disk_full", (f_spool_full, {}, {"tmpfs_spool": "32k"})),
    ("archive_disk_full", (f_archive_full, {}, {"tmpfs_archive": "48k"})),
])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("row", nargs="?")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds to spread the load over")
    ap.add_argument("--budget", type=int, default=150, help="seconds for load + fault")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list or not a.row:
        print("\n".join(ROWS))
        return 0
    if a.row not in ROWS:
        print("unknown row %s" % a.row, file=sys.stderr)
        return 2
    n = max(1, min(a.n, 2000))
    fault, opts, extras = ROWS[a.row]
    workdir = tempfile.mkdtemp(prefix="hq-chaos-%s-" % a.row)
    proxy = mounted = None
    for key, sub in (("tmpfs_spool", "spool"), ("tmpfs_archive", "archive")):
        if not extras.get(key):
            continue
        mnt = os.path.join(workdir, sub)
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + extras[key], "tmpfs", mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("row=%s SKIPPED: cannot mount a tmpfs here (%s); run as root or inject ENOSPC"
                  % (a.row, r.stderr.strip()), flush=True)
            shutil.rmtree(workdir, ignore_errors=True)
            return SKIP
        mounted = mnt
    if extras.get("proxy"):
        import tcpproxy
        proxy = tcpproxy.Proxy(hqtest.AMQP_PORT).start()
        opts = dict(opts, uris=[proxy.uri()])
    rig = Rig(a.row, workdir=workdir, **opts)
    rig.proxy = proxy
    ok = False
    try:
        hqtest.broker("start")  # idempotent; a previous row may have left it stopped
        row, ok = run_row(rig, fault, n, max(1, min(a.threads, 16)), a.budget,
                          max(0.0, min(a.duration, 120.0)))
        if ok and extras.get("tmpfs_archive"):
            ok = archive_intact(rig)
        for note in rig.notes[:10]:
            log(note)
        if proxy:
            log("proxy: accepted=%d resets=%d" % (proxy.accepted, proxy.resets))
        print(row, flush=True)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("row=%s FAILED (see above; logs in %s)" % (a.row, rig.dir), flush=True)
    finally:
        rig.stop_all()
        if proxy:
            proxy.stop()
        if mounted:
            subprocess.run(["umount", mounted], capture_output=True)
        try:
            hqtest.broker("ctl", "set_disk_free_limit", "50MB")
            hqtest.broker("ctl", "set_vm_memory_high_watermark", "absolute", "1GB")
        except Exception:  # noqa: BLE001
            pass
        if ok:
            rig.cleanup_broker()
            shutil.rmtree(rig.dir, ignore_errors=True)
        else:
            log("kept %s for inspection" % rig.dir)
            for p in (rig.gw, rig.wk, rig.ar):
                if p is not None:
                    sys.stdout.write(p.output()[-3000:])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
