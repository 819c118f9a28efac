"""hookmq-archive query and stats: the filters (--from/--to at their boundaries, RFC 3339 and
relative, --source, --type glob, --id, --grep, --kind, --limit), table output, late events in
the open segment, stats per hour and source; the command line (--help, --version, -c before or
after the subcommand, usage errors exit 2, a missing archive exits 1, a missing hookmq.archive
queue exits 3 with the `hookmq-dlx apply` hint)."""
import json
import subprocess
import time
import unittest

import archive_fixture as af
import hqtest


class ArchiveQuery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = af.prefix("arq")
        cls.ar = af.Archive(batch_max=16, batch_ms=10)
        cls.ar.apply()
        cls.ar.start()
        # an hour two hours ago: its events are late (written to the current segment)
        cls.h = (af.now_ms() // af.HOUR_MS - 2) * af.HOUR_MS
        h, p = cls.h, cls.p
        cls.events = [
            ("%s-a" % p, "b-1", h - 1, "invoice.paid", b'{"amount":1}'),
            ("%s-a" % p, "b0", h, "invoice.paid", b'{"amount":2,"note":"needle"}'),
            ("%s-a" % p, "b1", h + 1, "invoice.created", b'{"amount":3}'),
            ("%s-b" % p, "b2", h + af.HOUR_MS - 1, "charge.failed", b"\xffneedle\x00"),
            ("%s-b" % p, "b3", h + af.HOUR_MS, "charge.failed", b'{"x":"/"}'),
        ]
        for src, eid, at, etype, body in cls.events:
            af.publish_event(src, eid, at, body, etype=etype)
        af.publish_lifecycle("%s-a" % p, "b0", "billing", "processed", 1, h + 5)
        hqtest.wait_for(lambda: len(cls.ar.query("--kind", "all", "--source", "%s-a" % p)[0]) >= 4,
                        30, what="records")
        hqtest.wait_for(lambda: len(cls.ar.query("--source", "%s-b" % p)[0]) >= 2, 30,
                        what="records")

    @classmethod
    def tearDownClass(cls):
        cls.ar.stop()

    def ids(self, *args):
        recs, _ = self.ar.query(*args)
        return sorted(r["id"] for r in recs if r["source"].startswith(self.p))

    def test_time_window_boundaries(self):
        h = self.h
        f, t = af.rfc3339(h), af.rfc3339(h + af.HOUR_MS)
        # [from, to): the first ms is in, the last ms before `to` is in, `to` is out
        self.assertEqual(self.ids("--from", f, "--to", t), ["b0", "b1", "b2"])
        self.assertEqual(self.ids("--from", af.rfc3339(h + 1), "--to", af.rfc3339(h + 2)), ["b1"])
        self.assertEqual(self.ids("--from", af.rfc3339(h - 1), "--to", f), ["b-1"])
        self.assertEqual(self.ids("--from", t), ["b3"])
        self.assertEqual(self.ids("--to", f), ["b-1"])
        # relative times
        self.assertEqual(self.ids("--from", "-3h"), ["b-1", "b0", "b1", "b2", "b3"])
        self.assertEqual(self.ids("--from", "-1m"), [])
        # an RFC 3339 offset is the same instant
        local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(h // 1000 + 7200)) + "+02:00"
        self.assertEqual(self.ids("--from", local, "--to", t), ["b0", "b1", "b2"])

    def test_filters(self):
        p = self.p
        self.assertEqual(self.ids("--source", "%s-a" % p), ["b-1", "b0", "b1"])
        self.assertEqual(self.ids("--source", "%s-a" % p, "--type", "invoice.*"), ["b-1", "b0", "b1"])
        self.assertEqual(self.ids("--source", "%s-a" % p, "--type", "*.created"), ["b1"])
        self.assertEqual(self.ids("--type", "charge.fail?d", "--from", "-3h"), ["b2", "b3"])
        self.assertEqual(self.ids("--id", "b2"), ["b2"])
        self.assertEqual(self.ids("--id", "b2", "--source", "%s-a" % p), [])
        self.assertEqual(self.ids("--grep", "needle", "--from", "-3h"), ["b0", "b2"])
        self.assertEqual(self.ids("--grep", "/", "--source", "%s-b" % p), ["b3"])
        recs, _ = self.ar.query("--source", "%s-a" % p, "--kind", "lifecycle")
        self.assertEqual([(r["kind"], r["id"], r["type"]) for r in recs],
                         [("lifecycle", "b0", "processed")])
        recs, _ = self.ar.query("--source", "%s-a" % p, "--kind", "all")
        self.assertEqual(len(recs), 4)
        recs, _ = self.ar.query("--source", "%s-a" % p, "--limit", "2")
        self.assertEqual(len(recs), 2)
        # the stored record comes back as stored, byte-exact bodies
        rec = [r for r in self.ar.query("--id", "b2")[0]][0]
        self.assertEqual(af.body_bytes(rec), b"\xffneedle\x00")
        self.assertEqual(rec["type"], "charge.failed")
        self.assertEqual(rec["routing_key"], "%s-b.charge.failed" % p)

    def test_table_and_stats(self):
        rc, out, _ = self.ar.run("query", "--source", "%s-a" % self.p, "--format", "table")
        self.assertEqual(rc, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["TIME", "SOURCE", "TYPE", "ID", "SIZE"])
        self.assertEqual(len(lines), 4)
        cols = lines[2].split()
        self.assertEqual(cols[0], af.rfc3339(self.h))
        self.assertEqual(cols[1:], ["%s-a" % self.p, "invoice.paid", "b0", "28"])
        rc, out, _ = self.ar.run("stats", "--from", af.rfc3339(self.h - af.HOUR_MS), "--format", "json")
        self.assertEqual(rc, 0)
        rows = [json.loads(l) for l in out.splitlines()]
        mine = [(r["hour"], r["source"], r["events"], r["lifecycle"]) for r in rows
                if r["source"].startswith(self.p)]
        hour = lambda ms: af.rfc3339(ms)[:13] + ":00:00Z"
        self.assertEqual(sorted(mine), sorted([
            (hour(self.h - 1), "%s-a" % self.p, 1, 0),
            (hour(self.h), "%s-a" % self.p, 2, 1),
            (hour(self.h), "%s-b" % self.p, 1, 0),
            (hour(self.h + af.HOUR_MS), "%s-b" % self.p, 1, 0)]))
        rc, out, _ = self.ar.run("stats")
        self.assertEqual(rc, 0)
        self.assertTrue(out.splitlines()[0].startswith("HOUR"))
        self.assertTrue(out.splitlines()[-1].startswith("total"))

    def test_command_line(self):
        exe = self.ar.binary()
        r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        for word in ("query", "history", "stats", "--firehose-trace", "--from"):
            self.assertIn(word, r.stdout)
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^hookmq-archive \S+")
        # -c before the subcommand
        r = subprocess.run([exe, "-c", self.ar.config, "query", "--id", "b1"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(json.loads(r.stdout)["id"], "b1")
        for bad in (["query", "--from", "yesterday"], ["query", "--format", "xml"],
                    ["bogus"], ["query", "--kind", "x"], ["history"], ["run", "--id", "x"],
                    ["query", "--from", "-1h", "--to", "-2h"], ["stats", "--source", "x"]):
            rc, _, err = self.ar.run(*bad)
            self.assertEqual(rc, 2, (bad, err))
        r = subprocess.run([exe, "query", "-c", "/nonexistent.conf"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        # an archive that is not there
        r = subprocess.run([exe, "query", "--dir", "/nonexistent/archive"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/archive", r.stderr)
        # --dir reads a copy without a config
        r = subprocess.run([exe, "query", "--dir", self.ar.dir, "--id", "b1"],
                           capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["id"], "b1")

    def test_missing_queue_exits_3(self):
        vhost = "hq-archive-empty-" + self.p
        uri = af.make_vhost(vhost)
        try:
            ar = af.Archive(uri=uri)
            rc, _, err = ar.run("run", timeout=60)
            self.assertEqual(rc, 3, err)
            self.assertIn("hookmq.archive", err)
            self.assertIn("hookmq-dlx apply", err)
        finally:
            af.delete_vhost(vhost)


if __name__ == "__main__":
    unittest.main(verbosity=2)
