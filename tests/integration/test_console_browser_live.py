"""hookmq-console in a real browser (headless chromium driven by python3-selenium, as
test_console_browser.py): the sources page shows the gateway's own counts, and the events
page's live tail shows a webhook sent through a real gateway while the page is open, without a
reload. Exits 77 (skipped) without chromium, chromedriver or selenium; with
HQ_CONSOLE_SCREENSHOTS=DIR it saves its screenshots there."""
import os
import unittest

import test_console_browser as tcb  # the browser checks (exit 77) and helpers

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

import archive_fixture as af
import hqtest
from console_fixture import Console
from gwfixture import Gateway

SECRET = "gh-secret"


class ConsoleLive(unittest.TestCase):
    url, wait, shot, not_pwned = (tcb.ConsoleBrowser.url, tcb.ConsoleBrowser.wait,
                                  tcb.ConsoleBrowser.shot, tcb.ConsoleBrowser.not_pwned)

    @classmethod
    def setUpClass(cls):
        cls.prefix = af.prefix("csl")
        cls.src = "%s-gh" % cls.prefix
        cls.gw = Gateway('  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; }'
                         % (cls.src, SECRET))
        cls.gw.apply()
        cls.gw.start()
        cls.ar = af.Archive(batch_max=32, batch_ms=20)
        cls.ar.apply()
        cls.ar.start()
        with open(cls.gw.config) as f:
            cls.cs = Console(archive_dir=cls.ar.dir, base=f.read()).start()
        for i in range(2):
            cls.send("%s-evt-%d" % (cls.prefix, i))
        body = b'{"forged":true}'
        st, _h, _b = cls.gw.post(cls.src, body, hqtest.sign_github("wrong", body, "push", "f1"))
        assert st == 401, st
        cls.ar.wait_count(2, "--source", cls.src, timeout=90)
        cls.driver = tcb.chromium(cls.cs.workdir)
        cls.shots = os.environ.get("HQ_CONSOLE_SCREENSHOTS")

    @classmethod
    def send(cls, eid, body=None):
        body = body or b'{"id":"%s"}' % eid.encode()
        st, _h, b = cls.gw.post(cls.src, body, hqtest.sign_github(SECRET, body, "push", eid))
        assert st == 202, (st, b)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.driver.quit()
        finally:
            out = cls.cs.output()
            rc = cls.cs.stop()
            cls.ar.stop()  # also when the console failed
            cls.gw.stop()
            assert rc == 0, out

    def login(self):
        d = self.driver
        d.get(self.url("/login"))
        d.find_element(By.ID, "user").send_keys("ro")
        d.find_element(By.ID, "password").send_keys(self.cs.users["ro"][0])
        d.find_element(By.ID, "submit").click()
        self.wait(EC.url_to_be(self.url("/")))

    def ids_shown(self):
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#events tbody a'), a => a.textContent);")

    def test_live_tail(self):
        d = self.driver
        self.login()
        d.find_element(By.ID, "f-source").send_keys(self.src)
        d.find_element(By.ID, "search").click()
        self.wait(lambda drv: self.ids_shown() == ["%s-evt-1" % self.prefix,
                                                   "%s-evt-0" % self.prefix])
        d.find_element(By.ID, "live").click()
        # a marker on the page: a reload would lose it
        d.execute_script("window.__no_reload = 1;")
        new = "%s-evt-live" % self.prefix
        self.send(new, b'{"x":"<script>window.__pwned=1</script>"}')
        self.wait(lambda drv: self.ids_shown()[:1] == [new])
        self.assertEqual(self.ids_shown()[1:], ["%s-evt-1" % self.prefix, "%s-evt-0" % self.prefix])
        self.assertEqual(d.execute_script("return window.__no_reload;"), 1)
        self.assertEqual(d.find_element(By.CSS_SELECTOR, "#events tbody tr").get_attribute("class"),
                         "new")
        # a second one goes on top of it, each shown once
        new2 = "%s-evt-live2" % self.prefix
        self.send(new2)
        self.wait(lambda drv: self.ids_shown()[:2] == [new2, new])
        self.assertEqual(len(self.ids_shown()), 4)
        self.shot("events-live.png")
        self.not_pwned()
        # unticked: no more polling, so a later event stays off the page until a search
        d.find_element(By.ID, "live").click()
        self.send("%s-evt-later" % self.prefix)
        self.ar.wait_count(5, "--source", self.src, timeout=90)
        self.assertEqual(len(self.ids_shown()), 4)

    def test_sources_page(self):
        d = self.driver
        self.login()
        d.find_element(By.LINK_TEXT, "Sources").click()
        self.wait(EC.url_to_be(self.url("/sources")))
        self.wait(lambda drv: drv.find_elements(By.CSS_SELECTOR,
                                                "#sources tr[data-source='%s']" % self.src))
        self.assertEqual(d.find_element(By.ID, "origin").get_attribute("data-origin"), "metrics")
        self.assertIn("gateway's metrics", d.find_element(By.ID, "origin").text)
        row = d.find_element(By.CSS_SELECTOR, "#sources tr[data-source='%s']" % self.src)
        self.assertIn("401: 1", row.find_element(By.CSS_SELECTOR, "td.requests").text)
        self.assertIn("202: ", row.find_element(By.CSS_SELECTOR, "td.requests").text)
        self.assertTrue(row.find_element(By.CSS_SELECTOR, "td.failures").text.startswith("1 ("))
        self.shot("sources.png")


if __name__ == "__main__":
    unittest.main(verbosity=2)
