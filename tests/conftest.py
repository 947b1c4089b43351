"""Shared fixtures: a Flask tool protected by ltikit, and a platform-side signer.

Launches are signed with oauthlib's ``Client`` (through :mod:`ltikit.testing`), never
with ltikit's own verifier code, so every accepted launch is one a real platform could send.
"""

from __future__ import annotations

import contextlib
import logging
import time

import pytest
from flask import Flask

from ltikit.flask import LTIKit, lti
from ltikit.testing import launch_params, sign_launch

KEY = "canvas-key"
SECRET = "s3cret-shared-with-canvas"
LAUNCH_URL = "https://tool.example.edu/launch"


def build_tool(tmp_path, clock=time.time, **config) -> Flask:
    """A small tool: a launch page, a page for later requests, a staff-only page."""
    app = Flask("tool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="test-secret-key", LTIKIT_CONSUMERS={KEY: SECRET},
                      LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/ltikit.sqlite3")
    app.config.update(config)
    LTIKit(app, clock=clock)

    @app.route("/launch", methods=["GET", "POST"])
    @lti(request="initial")
    def launch(lti):
        return f"hello {lti.user.name} in {lti.context.title if lti.context else '-'}"

    @app.route("/page")
    @lti(request="session")
    def page(lti):
        return f"page for {lti.user_id} sourcedid={lti.launch.outcome.result_sourcedid if lti.launch.outcome else None}"

    @app.route("/staff", methods=["GET", "POST"])
    @lti(request="any", role="staff")
    def staff(lti):
        return f"staff page for {lti.user_id}"

    return app


@pytest.fixture
def tool(tmp_path):
    return build_tool(tmp_path)


@pytest.fixture
def client(tool):
    return tool.test_client()


@pytest.fixture
def signed():
    """``signed(**overrides)`` → a Canvas-like launch signed for LAUNCH_URL."""

    def make(url=LAUNCH_URL, *, key=KEY, secret=SECRET, where="body", method="POST",
             timestamp=None, nonce=None, signature_method="HMAC-SHA1", **overrides):
        return sign_launch(url, launch_params(**overrides), key=key, secret=secret,
                           where=where, method=method, timestamp=timestamp, nonce=nonce,
                           signature_method=signature_method)

    return make


@pytest.fixture
def ltikit_log(caplog):
    caplog.set_level(logging.INFO, logger="ltikit")
    return caplog


@pytest.fixture(scope="session")
def postgres_server():
    from servers import PostgresServer

    with PostgresServer.running() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database of each kind ltikit supports: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ltikit.sqlite3"
    return request.getfixturevalue("postgres_server").database()


_BROWSER_FIXTURES = {"browser", "phaseout_browser"}


def pytest_collection_modifyitems(items):
    """A test in Chromium is run again once when Playwright's driver died under it
    (microsoft/playwright#22208, "Assertion error" in FrameManager.frameAttached: the
    test then fails with TargetClosedError).  Any other failure counts at once, a wait
    that timed out included.  (pytest-rerunfailures matches ``only_rerun`` against the
    exception's class name and message, not its module.)"""
    for item in items:
        if _BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=["^TargetClosedError"]))


class _Chromium:
    """The end-to-end tests' Chromium, started once and started again if its Playwright
    driver died (see pytest_collection_modifyitems)."""

    def __init__(self):
        self._running = None
        self.browser = None

    def get(self):
        if self.browser is None or not self.browser.is_connected():
            self.stop()
            from browser import chromium

            self._running = chromium()
            self.browser = self._running.__enter__()
        return self.browser

    def stop(self):
        if self._running is not None:
            running, self._running, self.browser = self._running, None, None
            with contextlib.suppress(Exception):  # a dead driver cannot close cleanly
                running.__exit__(None, None, None)


@pytest.fixture(scope="session")
def _chromium():
    holder = _Chromium()
    yield holder
    holder.stop()


@pytest.fixture
def browser(_chromium):
    """Headless Chromium (Debian's, through Playwright), shared by the end-to-end tests;
    each test opens its own context (cookies and storage of a fresh profile)."""
    return _chromium.get()
