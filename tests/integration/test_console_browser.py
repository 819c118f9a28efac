"""hookmq-console in a real browser (Debian's chromium and chromium-driver, driven headless by
Debian's python3-selenium; `scripts/dev deps` installs them): log in, find an event by id, open
its page, redrive and edit parked events, run a replay dry run and then a replay, and prove
that HTML and a <script> inside an event (body and type) are shown as text and never run. With
HQ_CONSOLE_SCREENSHOTS=DIR it also saves screenshots of the pages there (docs/console/ holds the
committed ones).

The test needs /usr/bin/python3 (Debian's python3 sees python3-selenium); started by another
python3 it runs itself again with that one. Without chromium, chromedriver or selenium it exits
77, which ctest reports as skipped (the Debian 13 chroot of scripts/debian13 has no browser)."""
import os
import sys

DEBIAN_PY = "/usr/bin/python3"
try:
    import selenium  # noqa: F401
except ImportError:
    if os.path.exists(DEBIAN_PY) and os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PY):
        os.execv(DEBIAN_PY, [DEBIAN_PY] + sys.argv)
    print("SKIPPED: python3-selenium is not installed (scripts/dev deps)")
    sys.exit(77)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    print("SKIPPED: chromium or chromium-driver is not installed (scripts/dev deps)")
    sys.exit(77)

import json
import unittest

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import archive_fixture as af
import hqtest
import wkfixture
from console_fixture import Console
from gwfixture import Gateway, sources_block

SECRET = "gh-secret"
WAIT = 60

HOSTILE_BODY = ('{"note":"<img src=x onerror=\\"window.__pwned_img=1\\">",'
                '"html":"<script>window.__pwned=1;document.title=\'pwned\'</script>",'
                '"n":1}').encode()
HOSTILE_TYPE = "<b>bold</b><script>window.__pwned_type=1</script>"


def chromium(workdir):
    """A headless chromium driven by chromedriver, its profile under workdir."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions",
              "--user-data-dir=" + os.path.join(workdir, "chromium")):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT)
    return driver


class ConsoleBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = af.prefix("csb")
        cls.src = "%s-github" % cls.prefix
        cls.gw = Gateway(sources_block(cls.prefix))
        cls.gw.apply()
        cls.gw.start()
        cls.ar = af.Archive(batch_max=32, batch_ms=20)
        cls.ar.apply()
        cls.ar.start()
        # a consumer for the dead-letter pages (its own exchange: nothing routes to it)
        cls.wk = wkfixture.Setup("csbw")
        cls.c = cls.wk.consumer("billing", "log")
        cls.wk.apply()
        with open(cls.wk.config) as f:
            cls.cs = Console(archive_dir=cls.ar.dir, base=f.read()).start()
        cls.eid = "%s-evt-hostile" % cls.prefix
        for i in range(3):
            body = b'{"n":%d}' % i
            st, _h, b = cls.gw.post(cls.src, body, hqtest.sign_github(SECRET, body, "push",
                                                                       "%s-evt-%d" % (cls.prefix, i)))
            assert st == 202, (st, b)
        st, _h, b = cls.gw.post(cls.src, HOSTILE_BODY,
                                hqtest.sign_github(SECRET, HOSTILE_BODY, HOSTILE_TYPE, cls.eid))
        assert st == 202, (st, b)
        cls.ar.wait_count(4, "--source", cls.src, timeout=90)
        cls.driver = chromium(cls.cs.workdir)
        cls.shots = os.environ.get("HQ_CONSOLE_SCREENSHOTS")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.driver.quit()
        finally:
            out = cls.cs.output()
            rc = cls.cs.stop()
            cls.ar.stop()  # the others stop also when the console failed (an archive left
            cls.gw.stop()  # consuming would starve the next test's archive)
            cls.wk.cleanup()
            assert rc == 0, out

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.cs.port, path)

    def wait(self, cond):
        # the pages replace their tables when an answer comes: an element read in between is stale
        return WebDriverWait(self.driver, WAIT,
                             ignored_exceptions=[StaleElementReferenceException]).until(cond)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(self.cs.workdir, name))
        if self.shots:
            os.makedirs(self.shots, exist_ok=True)
            self.driver.save_screenshot(os.path.join(self.shots, name))

    def not_pwned(self):
        d = self.driver
        for var in ("__pwned", "__pwned_img", "__pwned_type"):
            self.assertIsNone(d.execute_script("return window.%s;" % var), var)
        self.assertNotEqual(d.title, "pwned")
        self.assertEqual(d.find_elements(By.CSS_SELECTOR, "main img, main b, main script"), [])

    def test_smoke(self):
        d = self.driver
        # a page without a session goes to the log-in form (other tests of this class logged in)
        d.get(self.url("/healthz"))
        d.delete_all_cookies()
        d.get(self.url("/"))
        self.wait(EC.url_to_be(self.url("/login")))
        self.shot("login.png")
        d.find_element(By.ID, "user").send_keys("ops")
        d.find_element(By.ID, "password").send_keys("wrong")
        d.find_element(By.ID, "submit").click()
        self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "p.error"), "Wrong user name"))
        d.find_element(By.ID, "user").clear()
        d.find_element(By.ID, "user").send_keys("ops")
        d.find_element(By.ID, "password").send_keys(self.cs.users["ops"][0])
        d.find_element(By.ID, "submit").click()
        self.wait(EC.url_to_be(self.url("/")))
        self.wait(EC.text_to_be_present_in_element((By.ID, "who"), "ops (operator)"))
        # the cookie is out of the page's reach
        self.assertEqual(d.execute_script("return document.cookie;"), "")
        self.wait(lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#events tbody tr")) >= 4)
        self.shot("events.png")
        self.not_pwned()
        # the hostile type is a table cell's text
        types = [td.text for td in d.find_elements(By.CSS_SELECTOR, "#events tbody td:nth-child(3)")]
        self.assertIn(HOSTILE_TYPE, types)

        # find the event by id
        d.find_element(By.ID, "f-id").send_keys(self.eid)
        d.find_element(By.ID, "search").click()
        self.wait(lambda drv: drv.execute_script(
            "return Array.from(document.querySelectorAll('#events tbody a'), a => a.textContent);")
            == [self.eid])
        self.assertIn("id=" + self.eid, d.current_url)
        d.find_element(By.LINK_TEXT, self.eid).click()

        # its page: summary, history, headers (signature redacted), the body as text
        self.wait(EC.visibility_of_element_located((By.ID, "detail")))
        self.assertEqual(d.find_element(By.ID, "ev-id").text, self.eid)
        self.wait(lambda drv: drv.find_element(By.ID, "body").text != "")
        body = d.find_element(By.ID, "body").text
        self.assertIn("<script>window.__pwned=1;document.title='pwned'</script>", body)
        self.assertIn('<img src=x onerror=\\"window.__pwned_img=1\\">', body)  # JSON-escaped
        self.assertEqual(json.loads(body)["n"], 1)  # pretty-printed JSON
        hist = [tr.text for tr in d.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
        self.assertTrue(hist and "received" in hist[0], hist)
        headers = {tr.find_element(By.TAG_NAME, "th").text: tr.find_element(By.TAG_NAME, "td").text
                   for tr in d.find_elements(By.CSS_SELECTOR, "#headers tbody tr")}
        self.assertEqual(headers["http-x-hub-signature-256"], "[redacted]")
        self.assertEqual(headers["http-x-github-event"], HOSTILE_TYPE)
        self.shot("event.png")
        self.not_pwned()
        # the raw view shows the exact text too
        d.find_element(By.ID, "view-raw").click()
        self.assertEqual(d.find_element(By.ID, "body").text, HOSTILE_BODY.decode())
        self.not_pwned()

        # log out: the API and the pages want a log-in again
        d.find_element(By.ID, "logout").click()
        self.wait(EC.url_to_be(self.url("/login")))
        d.get(self.url("/events/" + self.eid))
        self.wait(EC.url_to_be(self.url("/login")))

    def login(self):
        d = self.driver
        d.get(self.url("/login"))
        d.find_element(By.ID, "user").send_keys("ops")
        d.find_element(By.ID, "password").send_keys(self.cs.users["ops"][0])
        d.find_element(By.ID, "submit").click()
        self.wait(EC.url_to_be(self.url("/")))

    def park(self, mid, source, etype="<i>x</i>"):
        self.assertTrue(hqtest.publish_via_api(self.c.dlq, b'{"n":1}', {
            "message_id": mid, "delivery_mode": 2,
            "headers": {"hookmq-source": source, "hookmq-event-type": etype,
                        "hookmq-consumer": self.c.name, "hookmq-attempts": 3,
                        "hookmq-last-error": "<script>window.__pwned=1</script>"}}))

    def test_dlq_redrive(self):
        """An operator selects a parked event on the dead letters page and redrives it."""
        c = self.c
        hqtest.purge(c.dlq)
        hqtest.purge(c.queue)
        for i in range(2):
            self.park("evt_b%d" % i, "stripe")
        hqtest.wait_for(lambda: hqtest.queue_depth(c.dlq) == 2, 30, what="2 parked")
        d = self.driver
        self.login()
        d.get(self.url("/consumers"))
        self.wait(lambda drv: drv.find_elements(By.LINK_TEXT, c.dlq))
        self.shot("consumers.png")
        d.find_element(By.LINK_TEXT, c.dlq).click()
        self.wait(lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#dlq input.pick")) == 2)
        self.assertIn("<script>window.__pwned=1</script>", d.find_element(By.CSS_SELECTOR, "#dlq tbody").text)
        self.shot("dlq.png")
        self.not_pwned()
        d.find_element(By.CSS_SELECTOR, "#dlq input.pick[value='evt_b1']").click()
        d.find_element(By.ID, "redrive-selected").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "result"), "redriven 1 of 1 matching; 1 left"))
        self.wait(lambda drv: drv.execute_script(
            "return Array.from(document.querySelectorAll('#dlq input.pick'), b => b.value);") == ["evt_b0"])
        got = hqtest.get_messages(c.queue)
        self.assertEqual([m["properties"]["message_id"] for m in got], ["evt_b1"])
        self.assertIn("redriven user=ops consumer=%s event_id=evt_b1" % c.name, self.cs.output())
        # edit and retry the other one: a new body and a header
        d.find_element(By.CSS_SELECTOR, "button.edit[data-id='evt_b0']").click()
        self.wait(EC.visibility_of_element_located((By.ID, "edit-body")))
        d.find_element(By.ID, "edit-body").clear()
        d.find_element(By.ID, "edit-body").send_keys('{"n":0,"fixed":true}')
        d.find_element(By.ID, "edit-headers").send_keys("http-x-note: by hand")
        self.shot("dlq-edit.png")
        d.find_element(By.ID, "edit-send").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "result"), "edited by ops from sha256:"))
        self.wait(lambda drv: drv.find_elements(By.CSS_SELECTOR, "#dlq input.pick") == [])
        got = hqtest.get_messages(c.queue)
        self.assertEqual([m["properties"]["message_id"] for m in got], ["evt_b0"])
        self.assertEqual(got[0]["body"], b'{"n":0,"fixed":true}')
        self.assertEqual(got[0]["properties"]["headers"]["hookmq-edited-by"], "ops")
        self.assertEqual(got[0]["properties"]["headers"]["http-x-note"], "by hand")
        self.not_pwned()

    def test_event_page_redrive(self):
        """The page of an event parked for a consumer offers its redrive, and it works."""
        c = self.c
        eid = "%s-evt-1" % self.prefix
        hqtest.purge(c.queue)
        self.park(eid, self.src, "push")
        af.publish_lifecycle(self.src, eid, c.name, "dead_lettered", 3, af.now_ms(), error="boom")
        d = self.driver
        self.login()
        d.get(self.url("/events/%s?source=%s" % (eid, self.src)))
        self.wait(EC.text_to_be_present_in_element((By.ID, "ev-status"), "parked"))
        button = "Redrive to " + c.name
        self.wait(lambda drv: drv.find_elements(By.XPATH, "//button[text()='%s']" % button))
        d.find_element(By.XPATH, "//button[text()='%s']" % button).click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "result"), "redriven to " + c.name))
        got = hqtest.get_messages(c.queue)
        self.assertEqual([m["properties"]["message_id"] for m in got], [eid])

    def test_replay(self):
        """From an event's page to the replay page (its id filled in), a dry run of one event;
        then a dry run of a window (count and sample), the replay itself with its progress to
        the end, and the events in the consumer's work queue."""
        c = self.c
        eid = "%s-evt-0" % self.prefix
        hqtest.purge(c.queue)
        d = self.driver
        self.login()
        d.get(self.url("/events/%s?source=%s" % (eid, self.src)))
        self.wait(EC.element_to_be_clickable((By.ID, "replay-link"))).click()
        self.wait(EC.url_contains("/replay?id="))
        self.wait(lambda drv: drv.find_element(By.ID, "r-id").get_attribute("value") == eid)
        self.assertEqual(d.find_element(By.ID, "r-source").get_attribute("value"), self.src)
        d.find_element(By.ID, "r-consumer").send_keys(c.name)
        d.find_element(By.ID, "dry-run").click()
        self.wait(EC.text_to_be_present_in_element(
            (By.ID, "dry-count"), "1 event would be replayed to " + c.name))
        self.assertEqual([td.text for td in d.find_elements(By.CSS_SELECTOR, "#sample tbody td:nth-child(4)")],
                         [eid])

        # a window: the four events of the source
        d.find_element(By.ID, "r-id").clear()
        d.find_element(By.ID, "r-from").send_keys("-1h")
        d.find_element(By.ID, "r-rate").send_keys("50")
        d.find_element(By.ID, "dry-run").click()
        self.wait(EC.text_to_be_present_in_element(
            (By.ID, "dry-count"), "4 events would be replayed to " + c.name))
        self.wait(lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#sample tbody tr")) == 4)
        self.assertIn(HOSTILE_TYPE, d.find_element(By.CSS_SELECTOR, "#sample tbody").text)
        self.not_pwned()
        d.find_element(By.ID, "start").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "cur-state"), "done"))
        summary = d.find_element(By.ID, "summary").text
        self.assertIn("4 / 4", summary)
        self.assertIn("ops", summary)
        self.wait(lambda drv: c.name in drv.find_element(By.CSS_SELECTOR, "#replays tbody").text)
        self.shot("replay.png")
        self.not_pwned()
        # exactly the four, once each: the dry runs published nothing
        got = hqtest.get_messages(c.queue)
        self.assertEqual(sorted(m["properties"]["message_id"] for m in got),
                         sorted(["%s-evt-%d" % (self.prefix, i) for i in range(3)] + [self.eid]))
        self.assertIn("replay started", self.cs.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
