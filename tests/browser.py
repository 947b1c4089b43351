"""Real headless Chromium for end-to-end tests (Debian's ``chromium`` driven by Playwright).

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``
(``python3 dev.py test`` installs Debian's package when it is missing).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from contextlib import contextmanager

from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = os.environ.get("LTIKIT_TEST_CHROMIUM", "/usr/bin/chromium")
# --disable-site-isolation-trials: every frame in its page's renderer process.  With site
# isolation, the tool's frame changes process at each switch between the platform
# (localhost) and the tool (127.0.0.1), four times per 1.3 launch, and Playwright 1.65 on
# Debian's Chromium 156 now and then misses such a switch: the frame had reached the tool's
# page (Target.getTargets said so, and the launch was stored) while Playwright still saw
# the platform's auth page and waited 30 s for what the tool showed (1 run in 12 to 60 of
# one test under load).  Cookies, their partitioning and postMessage do not depend on the
# process model, so the tests still see what a browser does.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-site-isolation-trials"]


@contextmanager
def chromium():
    """A Playwright ``Browser`` on the system Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: run the tests with `python3 dev.py test` "
                           "(it installs Debian's chromium) or set LTIKIT_TEST_CHROMIUM")
    profile = tempfile.mkdtemp(prefix="ltikit-chromium-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=[*CHROMIUM_ARGS])
        try:
            yield browser
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def launched(browser, *extra_args: str):
    """Another Chromium from the same Playwright as ``browser``, with ``extra_args``."""
    other = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                        args=[*CHROMIUM_ARGS, *extra_args])
    try:
        yield other
    finally:
        other.close()


def become(page, platform_url: str, user_id: int | str, name: str) -> None:
    """Switch the platform's user (by id, or by label) and wait until the platform says
    it switched.

    The switch is a form POST answered by a redirect; a click made before that lands
    launches the tool as the previous user (the flake this waits out)."""
    page.goto(platform_url + "/")
    if isinstance(user_id, int):
        page.select_option("#user-switch", str(user_id))
    else:  # the entry's label, "Sam Student (student)"
        page.select_option("#user-switch", label=user_id)
    with page.expect_navigation():
        page.click("text=Switch")
    page.wait_for_selector(f"text=You are {name}")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@contextmanager
def serve(app, host: str = "127.0.0.1"):
    """Serve a WSGI app on a free port in a thread; yields its base URL."""
    server = make_server(host, 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
