#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The status page in a real browser: headless Chromium driven by selenium.

Run by tests/integration/browser_test.cc (BrowserTest.*) against a cluster
of two real httpd nodes it started, with two tokens already blocked:

  status_page.py --page0 http://127.0.0.1:P0/uritoken-status \
                 --page1 http://127.0.0.1:P1/uritoken-status \
                 --client site42 --pardon SESSION --other SESSION \
                 --revoke-url URL --revoke-session SESSION \
                 --out BUILD_DIR/browser --profile-root DIR

`--pardon` is the blocked token of client `--client` (pardoned here with
its Pardon button), `--other` the blocked token of another client (hidden
by the client filter, blocked to the end), `--revoke-url` the shared URL of
a third token, served until this script pastes it into the revoke form.

It reads, filters, pardons and revokes as an operator would, checks each
outcome on the other node's page, checks the page for inputs without a
label, external assets and horizontal overflow on a phone, reads it with
JavaScript off, and saves screenshots in --out (status-1280.png,
status-1280-full.png, status-phone.png, status-phone-full.png). Exit 0 on
success; 1 with "FAIL: ..." on stderr (and status-failure.png) otherwise.

Needs Debian's chromium, chromium-driver and python3-selenium
(scripts/debian-packages.txt); run with /usr/bin/python3, which sees them.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def log(message):
    print("status_page.py: " + message, flush=True)


try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, TimeoutException, WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:  # no silent skip: the test needs a browser
    print("FAIL: python3-selenium is missing (%s): install scripts/debian-packages.txt "
          "(bash scripts/install-deps.sh) and run with /usr/bin/python3" % e, file=sys.stderr)
    sys.exit(1)


def start_browser(profile_root, javascript=True):
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise Failure("%s is missing: install chromium and chromium-driver "
                          "(scripts/debian-packages.txt, bash scripts/install-deps.sh)" % path)
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", "--lang=en-US",
                "--user-data-dir=" + tempfile.mkdtemp(prefix="profile-", dir=profile_root)):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    service = Service(executable_path=CHROMEDRIVER, log_path=os.path.join(profile_root, "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


class Page:
    """The status page of one node, as the browser shows it."""

    def __init__(self, driver, url):
        self.driver, self.url = driver, url

    def open(self, query=""):
        self.driver.get(self.url + query)
        check("mod_uritoken status" in self.driver.title,
              "%s%s: not the status page (title %r)" % (self.url, query, self.driver.title))
        return self

    def find(self, css, within=None):
        try:
            return (within or self.driver).find_element(By.CSS_SELECTOR, css)
        except NoSuchElementException:
            raise Failure("%s: no element %r on the page" % (self.driver.current_url, css))

    def rows(self, section):
        """{session: row element} of the table in <section id=section> (session in the first cell);
        {} if the page has no such section (the pardoned one is left out while empty)."""
        out = {}
        for table in self.driver.find_elements(By.CSS_SELECTOR, "section#%s table" % section):
            for row in table.find_elements(By.CSS_SELECTOR, "tr"):
                cells = row.find_elements(By.CSS_SELECTOR, "td:not(.empty)")
                if cells:
                    out[cells[0].text.strip()] = row
        return out

    def blocked(self):
        check(self.driver.find_elements(By.CSS_SELECTOR, "section#blocked table"),
              "%s: no table of blocked tokens" % self.driver.current_url)
        return self.rows("blocked")

    def pardoned(self):
        return self.rows("pardoned")

    def submit(self, button):
        """Clicks a form's button and waits for the page it leads to (after a POST, the redirect's):
        a new document, told apart from the old one by a mark left on the old one's window."""
        self.driver.execute_script("window.uritokenOldPage = true;")
        label = button.text
        button.click()

        def new_page_loaded(d):
            return d.execute_script(
                "return window.uritokenOldPage !== true && document.readyState === 'complete';")
        try:
            WebDriverWait(self.driver, 10, ignored_exceptions=(WebDriverException,)).until(new_page_loaded)
        except TimeoutException:
            raise Failure("%s: clicking %r led to no new page within 10 s" % (self.driver.current_url, label))

    def text(self):
        return self.find("body").text

    def wait_until(self, what, condition, seconds=8.0):
        """Reloads the page until condition(self) holds (gossip takes a moment)."""
        deadline = time.monotonic() + seconds
        while True:
            self.open()
            if condition(self):
                return
            if time.monotonic() > deadline:
                raise Failure("%s: %s, not within %.0f s; the page says:\n%s"
                              % (self.url, what, seconds, self.text()))
            time.sleep(0.25)


def unlabelled_inputs(driver):
    """Visible form controls that a screen reader could not name."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                       && !e.getAttribute('aria-labelledby') && !(e.tagName == 'BUTTON' && e.textContent.trim()))
          .map(e => e.outerHTML);""")


def foreign_resources(driver):
    """Everything the page loaded, or refers to for loading, that is not itself."""
    return driver.execute_script("""
        const loaded = performance.getEntriesByType('resource').map(e => e.name);
        const referred = Array.from(document.querySelectorAll('link[href], script[src], img[src], iframe[src]'))
          .map(e => e.href || e.src);
        return loaded.concat(referred);""")


def overflow(driver):
    """How many CSS pixels the page is wider than the viewport (0: no sideways scrolling)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")


def screenshot(driver, path, full=False, mobile=False):
    """The viewport; with full, the whole page (the viewport grown to its height)."""
    if full:
        width, height = driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollHeight];")
        emulate(driver, width, height, mobile)
    check(driver.save_screenshot(path), "could not save " + path)
    log("saved " + path)


def emulate(driver, width, height, mobile):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def scenario(driver, a):
    page0, page1 = Page(driver, a.page0), Page(driver, a.page1)
    emulate(driver, 1280, 900, False)

    # 1. Both blocked tokens are listed, with their client.
    page0.open()
    blocked = page0.blocked()
    for session in (a.pardon, a.other):
        check(session in blocked, "node 0 does not list blocked session %s; it lists %s" % (session, sorted(blocked)))
    check(a.client in blocked[a.pardon].text,
          "the row of %s does not name client %s: %r" % (a.pardon, a.client, blocked[a.pardon].text))
    check(a.revoke_session not in blocked, "session %s is blocked before the test revoked it" % a.revoke_session)
    bad = unlabelled_inputs(driver)
    check(not bad, "form controls without a label (<label> or aria-label):\n  " + "\n  ".join(bad))
    foreign = foreign_resources(driver)
    check(not foreign, "the page loads or links resources: %s" % foreign)
    check(overflow(driver) <= 0, "at 1280 px the page scrolls sideways by %d px" % overflow(driver))

    # 2. The client filter, through its form.
    field = page0.find("#blocked form[method=get] input[name=client]")
    field.clear()
    field.send_keys(a.client)
    page0.submit(page0.find("#blocked form[method=get] button"))
    check("client=" + a.client in driver.current_url, "the filter form did not submit: at " + driver.current_url)
    blocked = page0.blocked()
    check(a.pardon in blocked, "filtered by client %s, session %s (that client's) is gone" % (a.client, a.pardon))
    check(a.other not in blocked, "filtered by client %s, session %s (another client's) is still listed"
          % (a.client, a.other))
    check(page0.find("#blocked form[method=get] input[name=client]").get_attribute("value") == a.client,
          "the filter form does not show the filter in force")
    check("1 of 2 shown" in page0.text(), "filtered, the page does not say '1 of 2 shown':\n" + page0.text())

    # 3. Pardon by its button, with a comment; the page tells the outcome.
    row = page0.blocked()[a.pardon]
    page0.find("input[name=comment]", within=row).send_keys("customer called: one family")
    page0.submit(page0.find("button", within=row))
    check("done=" in driver.current_url, "pardon: no outcome in the address: " + driver.current_url)
    check("pardoned session " + a.pardon in page0.text(),
          "pardon: the page does not say 'pardoned session %s':\n%s" % (a.pardon, page0.text()))
    check(a.pardon not in page0.blocked(), "pardon: node 0 still lists %s as blocked" % a.pardon)
    pardoned = page0.pardoned().get(a.pardon)
    check(pardoned is not None, "pardon: node 0 does not list %s as pardoned" % a.pardon)
    check("customer called: one family" in pardoned.text,
          "pardon: node 0 does not show the comment: %r" % pardoned.text)
    screenshot(driver, os.path.join(a.out, "status-done-1280.png"))

    # 4. Node 1 learns it through gossip.
    page1.wait_until("session %s still listed as blocked on node 1" % a.pardon,
                     lambda p: a.pardon not in p.blocked() and a.pardon in p.pardoned())
    check(a.other in page1.blocked(), "node 1 no longer lists %s (nobody pardoned it)" % a.other)

    # 5. Revoke by pasting the shared URL into node 0's form.
    page0.open()
    form = page0.find("#revoke form[method=post]")
    page0.find("input[name=url]", within=form).send_keys(a.revoke_url)
    page0.find("input[name=comment]", within=form).send_keys("posted on a forum")
    page0.submit(page0.find("button", within=form))
    check("revoked session " + a.revoke_session in page0.text(),
          "revoke: the page does not say 'revoked session %s':\n%s" % (a.revoke_session, page0.text()))
    check(a.revoke_url not in driver.page_source, "revoke: the page shows the token")
    row = page0.blocked().get(a.revoke_session)
    check(row is not None, "revoke: node 0 does not list %s as blocked" % a.revoke_session)
    check("manual" in row.text and "posted on a forum" in row.text,
          "revoke: node 0 does not show it as manual with the comment: %r" % row.text)
    # Node 1 lists it too, with the operator's comment: the evidence
    # travels with the revocation.
    page1.wait_until("session %s not listed as blocked on node 1" % a.revoke_session,
                     lambda p: a.revoke_session in p.blocked())
    page1.open()
    row1 = page1.blocked().get(a.revoke_session)
    check(row1 is not None and "posted on a forum" in row1.text,
          "revoke: node 1 does not show the operator's comment: %r" % (row1.text if row1 else None))

    # 6. Screenshots of node 1's page: two blocked (one automatic, one
    # manual), one pardoned.
    page1.open()
    screenshot(driver, os.path.join(a.out, "status-1280.png"))
    screenshot(driver, os.path.join(a.out, "status-1280-full.png"), full=True)
    emulate(driver, 390, 844, True)
    page1.open()
    check(overflow(driver) <= 0, "on a phone (390 px) the page scrolls sideways by %d px" % overflow(driver))
    screenshot(driver, os.path.join(a.out, "status-phone.png"))
    screenshot(driver, os.path.join(a.out, "status-phone-full.png"), full=True, mobile=True)


def without_javascript(a):
    """The page reads the same with JavaScript off (a second browser, JS disabled by policy)."""
    driver = start_browser(a.profile_root, javascript=False)
    try:
        driver.get("data:text/html,<title>off</title><script>document.title='on'</script>")
        check(driver.title == "off", "JavaScript is not off in the second browser (title %r)" % driver.title)
        page = Page(driver, a.page1).open()
        blocked = page.blocked()
        for session in (a.other, a.revoke_session):
            check(session in blocked, "without JavaScript, node 1 does not list %s: %s" % (session, sorted(blocked)))
        check(a.pardon in page.pardoned(), "without JavaScript, node 1 does not list %s as pardoned" % a.pardon)
        page.open("?client=other")
        check(list(page.blocked()) == [a.other], "without JavaScript, ?client=other lists %s" % sorted(page.blocked()))
    finally:
        driver.quit()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("page0", "page1", "client", "pardon", "other", "revoke-url", "revoke-session", "out"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--profile-root", help="where the browser profiles go (default: a new temporary directory)")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    own_root = a.profile_root is None
    if own_root:
        a.profile_root = tempfile.mkdtemp(prefix="uritoken-browser-")
    driver = None
    try:
        driver = start_browser(a.profile_root)
        scenario(driver, a)
        driver.quit()
        driver = None
        without_javascript(a)
        log("all checks passed")
        return 0
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        return 1
    except WebDriverException as e:
        traceback.print_exc()
        print("FAIL: the browser failed: %s" % (e.msg or e), file=sys.stderr)
        return 1
    finally:
        if driver is not None:
            try:
                driver.save_screenshot(os.path.join(a.out, "status-failure.png"))
                with open(os.path.join(a.out, "status-failure.html"), "w") as f:
                    f.write(driver.page_source)
            except WebDriverException:
                pass
            driver.quit()
        if own_root:
            shutil.rmtree(a.profile_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
