#!/usr/bin/env python3
"""check_monitoring.py SOURCE_DIR BUILD_DIR: the shipped monitoring files against the metrics
hookmq really exports.

- conf/grafana/hookmq-dashboard.json: valid dashboard JSON (unique panel ids, no overlapping
  panels, every query on the ${datasource} variable, every $variable defined), every hookmq_*
  metric it queries is documented in docs/metrics.md, every rabbitmq_* one is a per-object
  metric of RabbitMQ's Prometheus plugin; with promtool, every query parses (checked as a
  recording rule).
- conf/prometheus/hookmq-alerts.yml: the same name checks; `promtool check rules`, and
  `promtool test rules tests/package/hookmq-alerts.test.yml` (each alert fires when it should).
- a live hookmq-gateway's /metrics (started here with an unreachable broker, so it spools;
  no RabbitMQ needed) passes `promtool check metrics`, and exports exactly the hookmq_gateway_*
  names docs/metrics.md documents.

Exit 0 ok, 1 a check failed, 77 the promtool checks were skipped (promtool missing: Debian's
prometheus package) and everything else passed.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC, BUILD = sys.argv[1], sys.argv[2]
DASHBOARD = os.path.join(SRC, "conf", "grafana", "hookmq-dashboard.json")
ALERTS = os.path.join(SRC, "conf", "prometheus", "hookmq-alerts.yml")
ALERT_TESTS = os.path.join(SRC, "tests", "package", "hookmq-alerts.test.yml")
METRICS_DOC = os.path.join(SRC, "docs", "metrics.md")
# per-object queue metrics of rabbitmq_prometheus (checked against RabbitMQ 3.10's
# /metrics/per-object) that the files may use
RABBITMQ_METRICS = {"rabbitmq_queue_messages", "rabbitmq_queue_messages_ready",
                    "rabbitmq_queue_messages_unacked", "rabbitmq_queue_consumers"}
PROMTOOL = shutil.which("promtool")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def documented():
    with open(METRICS_DOC) as f:
        return set(re.findall(r"`(hookmq_[a-z0-9_]+)`", f.read()))


def base_name(n):
    for suffix in ("_bucket", "_sum", "_count"):
        if n.endswith(suffix):
            return n[: -len(suffix)]
    return n


def check_names(where, text, docs):
    for n in sorted(set(re.findall(r"\b(hookmq_[a-z0-9_]+|rabbitmq_[a-z0-9_]+)\b", text))):
        if n.startswith("hookmq_") and base_name(n) not in docs and n not in docs:
            fail("%s: %s is not documented in docs/metrics.md" % (where, n))
        if n.startswith("rabbitmq_") and n not in RABBITMQ_METRICS:
            fail("%s: %s is not a rabbitmq_prometheus per-object metric we checked" % (where, n))


def promtool(*args, stdin=None):
    return subprocess.run([PROMTOOL] + list(args), input=stdin, capture_output=True, text=True,
                          timeout=120)


def check_dashboard(docs):
    with open(DASHBOARD) as f:
        d = json.load(f)
    for k in ("title", "uid", "panels", "templating", "schemaVersion"):
        if k not in d:
            fail("dashboard: no %s" % k)
    variables = {v["name"] for v in d["templating"]["list"]}
    if "datasource" not in variables:
        fail("dashboard: no datasource variable")
    ids, rects, exprs = set(), [], []
    for p in d["panels"]:
        if p["id"] in ids:
            fail("dashboard: duplicate panel id %d" % p["id"])
        ids.add(p["id"])
        g = p["gridPos"]
        for (oid, o) in rects:
            if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and
                    g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                fail("dashboard: panels %d and %d overlap" % (p["id"], oid))
        rects.append((p["id"], g))
        if g["x"] + g["w"] > 24:
            fail("dashboard: panel %d wider than the grid" % p["id"])
        if p["type"] == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail("dashboard: panel %r does not use ${datasource}" % p["title"])
        if not p.get("targets"):
            fail("dashboard: panel %r has no query" % p["title"])
        for t in p.get("targets", []):
            e = t.get("expr", "")
            exprs.append((p["title"], e))
            for v in re.findall(r"\$(\w+)", e):
                if v not in variables and not v.startswith("__"):
                    fail("dashboard: panel %r uses undefined $%s" % (p["title"], v))
    check_names("dashboard", "\n".join(e for _, e in exprs), docs)
    print("dashboard: %d panels, %d queries" % (len(d["panels"]), len(exprs)))
    if PROMTOOL:
        # every query must parse: check them as recording rules, Grafana's variables filled in
        lines = ["groups:", "  - name: dashboard", "    rules:"]
        for i, (title, e) in enumerate(exprs):
            e = e.replace("$__rate_interval", "5m").replace("$source", ".*").replace("$consumer", ".*")
            lines.append("      - record: dashboard:query_%d" % i)
            lines.append("        expr: %s" % json.dumps(e))
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as tf:
            tf.write("\n".join(lines) + "\n")
        r = promtool("check", "rules", tf.name)
        os.unlink(tf.name)
        if r.returncode != 0:
            fail("dashboard queries do not parse: " + r.stdout + r.stderr)


def check_alerts(docs):
    with open(ALERTS) as f:
        text = "\n".join(ln for ln in f.read().splitlines() if not ln.lstrip().startswith("#"))
    check_names("alerts", text, docs)
    for name in ("HookmqDlqGrowing", "HookmqDlqMessagesOld", "HookmqSpoolNotEmpty",
                 "HookmqVerificationFailuresSpiking", "HookmqConsumerWithoutWorkers",
                 "HookmqBrokerDisconnected"):
        if "alert: %s\n" % name not in text + "\n":
            fail("alerts: no %s" % name)
    if not PROMTOOL:
        return
    r = promtool("check", "rules", ALERTS)
    print(r.stdout.strip())
    if r.returncode != 0:
        fail("promtool check rules: " + r.stdout + r.stderr)
    r = promtool("test", "rules", ALERT_TESTS)
    print(r.stdout.strip())
    if r.returncode != 0:
        fail("promtool test rules: " + r.stdout + r.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def request(port, method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def check_live_gateway(docs):
    gw = os.path.join(BUILD, "gateway", "hookmq-gateway")
    d = tempfile.mkdtemp(prefix="hq-mon-")
    port, mport, dead = free_port(), free_port(), free_port()
    conf = os.path.join(d, "hookmq.conf")
    with open(conf, "w") as f:
        f.write("""
broker = { uris = [ "amqp://guest:guest@127.0.0.1:%d/%%2f" ]; };
gateway = { listen = "127.0.0.1:%d"; metrics_listen = "127.0.0.1:%d";
            spool_dir = "%s/spool"; confirm_timeout_ms = 200; };
sources = ( { name = "gh"; scheme = "github"; secrets = [ "s" ]; } );
log = { level = "warn"; };
""" % (dead, port, mport, d))
    log = open(os.path.join(d, "gateway.log"), "wb")
    p = subprocess.Popen([gw, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.time() + 20
        while True:
            try:
                if request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > end or p.poll() is not None:
                fail("gateway did not start: " + open(log.name, errors="replace").read())
                return
            time.sleep(0.1)
        import hashlib
        import hmac
        body = b'{"zen":"metrics"}'
        sig = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
        st = request(port, "POST", "/webhooks/gh", body, {"X-GitHub-Event": "ping",
                  "X-GitHub-Delivery": "d1", "X-Hub-Signature-256": sig,
                  "Content-Type": "application/json"})[0]
        if st != 202:
            fail("gateway with an unreachable broker: %d, expected 202 (spooled)" % st)
        st = request(port, "POST", "/webhooks/gh", body,
                     {"X-Hub-Signature-256": "sha256=" + "0" * 64})[0]
        if st != 401:
            fail("a bad signature: %d, expected 401" % st)
        request(port, "POST", "/webhooks/nope", body, {})
        # the counters of a request are updated once its answer is out: wait for them
        needed = ('hookmq_gateway_spooled_total 1', 'status="401"', 'reason="bad_signature"')
        end = time.time() + 10
        while True:
            st, text = request(mport, "GET", "/metrics")
            text = text.decode()
            if st != 200:
                fail("/metrics: %d" % st)
                return
            if all(n in text for n in needed) or time.time() > end:
                break
            time.sleep(0.1)
        exported = {base_name(n) for n in re.findall(r"^(hookmq_[a-z0-9_]+)", text, re.M)}
        doc_gw = {n for n in docs if n.startswith("hookmq_gateway_")}
        for n in sorted(doc_gw - exported):
            fail("docs/metrics.md documents %s, the gateway does not export it" % n)
        for n in sorted(exported - doc_gw):
            fail("the gateway exports %s, docs/metrics.md does not document it" % n)
        for n in needed:
            if n not in text:
                fail("/metrics lacks %s" % n)
        if PROMTOOL:
            r = promtool("check", "metrics", stdin=text)
            if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
                fail("promtool check metrics: " + r.stdout + r.stderr)
            else:
                print("promtool check metrics: ok (%d lines)" % len(text.splitlines()))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    docs = documented()
    check_dashboard(docs)
    check_alerts(docs)
    check_live_gateway(docs)
    if failures:
        print("monitoring check FAILED (%d)" % len(failures), file=sys.stderr)
        return 1
    if not PROMTOOL:
        print("SKIP: promtool not installed (apt-get install prometheus): promtool checks skipped")
        return 77
    print("monitoring check ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
