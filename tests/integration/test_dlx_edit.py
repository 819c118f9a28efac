"""`hookmq-dlx edit NAME ID --body FILE --header K=V`: edit and retry one parked event from the
command line, the same as the console's edit (hookmq-edited-from = sha256 of the original body,
hookmq-edited-by = the OS user, a lifecycle record of kind "edit"); refusals and exit codes."""
import getpass
import hashlib
import json
import os
import pwd
import subprocess
import unittest

import hqtest
import wkfixture


def dlx(*args, stdin=None):
    return subprocess.run([hqtest.binary("hookmq-dlx")] + list(args), capture_output=True,
                          input=stdin, timeout=120)


class DlxEdit(unittest.TestCase):
    def setUp(self):
        self.s = wkfixture.Setup("dle")
        self.c = self.s.consumer("billing", "log")
        self.s.apply()
        self.addCleanup(self.s.cleanup)
        self.audit = "hookmq.test.%s.edits" % self.c.name
        hqtest.declare_queue(self.audit, bindings=["%s.edit" % self.c.name],
                             exchange="hookmq.lifecycle")
        self.addCleanup(hqtest.delete_queue, self.audit)
        for i in range(3):
            self.assertTrue(hqtest.publish_via_api(self.c.dlq, b'{"n":%d}' % i, {
                "message_id": "evt_e%d" % i, "delivery_mode": 2,
                "headers": {"hookmq-source": "stripe", "hookmq-event-type": "invoice.paid",
                            "hookmq-consumer": self.c.name, "hookmq-attempts": 3,
                            "hookmq-last-error": "exit 1"}}))
        hqtest.wait_for(lambda: hqtest.queue_depth(self.c.dlq) == 3, 30, what="3 parked")

    def test_edit(self):
        body = os.path.join(self.s.dir, "body.json")
        with open(body, "wb") as f:
            f.write(b'{"n":1,"fixed":true}')
        r = dlx("edit", self.c.name, "evt_e1", "-c", self.s.config, "--body", body,
                "--header", "http-x-note=by hand", "--header", "content-kind=v2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"edited evt_e1 -> " + self.c.queue.encode(), r.stdout)
        got = hqtest.get_messages(self.c.queue)
        self.assertEqual([m["properties"]["message_id"] for m in got], ["evt_e1"])
        h = got[0]["properties"]["headers"]
        self.assertEqual(got[0]["body"], b'{"n":1,"fixed":true}')
        self.assertEqual(h["hookmq-edited-from"], "sha256:" + hashlib.sha256(b'{"n":1}').hexdigest())
        user = pwd.getpwuid(os.geteuid()).pw_name
        self.assertEqual(h["hookmq-edited-by"], user)
        self.assertEqual((h["http-x-note"], h["content-kind"]), ("by hand", "v2"))
        self.assertNotIn("hookmq-last-error", h)
        # the others stay parked, in order
        r = dlx("list", self.c.name, "-c", self.s.config, "--json")
        self.assertEqual([json.loads(l)["id"] for l in r.stdout.decode().splitlines()],
                         ["evt_e0", "evt_e2"])
        recs = []
        hqtest.wait_for(lambda: recs.extend(json.loads(m["body"]) for m in hqtest.get_messages(self.audit))
                        or recs, 30, what="the edit record")
        self.assertEqual((recs[0]["verdict"], recs[0]["by"], recs[0]["id"]), ("edit", user, "evt_e1"))
        self.assertIn("body 7 -> 20 bytes, header http-x-note, header content-kind", recs[0]["error"])
        # the body from standard input, headers only
        r = dlx("edit", self.c.name, "evt_e2", "-c", self.s.config, "--body", "-", stdin=b"\xff raw")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hqtest.get_messages(self.c.queue)[0]["body"], b"\xff raw")

    def test_refusals(self):
        conf = self.s.config
        for args, code, want in [
                (["edit", self.c.name, "evt_e0"], 2, b"nothing to change"),
                (["edit", self.c.name], 2, b"give the consumer NAME and the event ID"),
                (["edit", self.c.name, "evt_e0", "--header", "hookmq-source=x"], 2, b"may not be edited"),
                (["edit", self.c.name, "evt_e0", "--header", "novalue"], 2, b"NAME=VALUE"),
                (["edit", self.c.name, "evt_e0", "--body", "/nonexistent/file"], 2, b"No such file"),
                (["edit", "nosuch", "evt_e0", "--header", "a=b"], 2, b"no consumer"),
                (["edit", self.c.name, "evt_none", "--header", "a=b"], 1, b"no message with event id")]:
            r = dlx(*(args + ["-c", conf]))
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(want, r.stderr, args)
        self.assertEqual(hqtest.queue_depth(self.c.dlq), 3)
        r = dlx("edit", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: hookmq-dlx edit NAME ID", r.stdout)
        self.assertIn(b"edit NAME ID", dlx("--help").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
