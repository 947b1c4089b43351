"""The cookie check at an LTI 1.3 login inside a frame, for platforms without storage.

A tool framed by a platform cannot rely on its cookies: Safari, and any browser set to
block third-party cookies, drop them inside the course page.  Where the platform offers
no storage (:mod:`.platform_storage`), the only way on is the same login in a new window,
where the tool's cookies are first-party.  That has to be offered *before* the browser
goes to the platform's auth endpoint: Canvas and Moodle accept an ``lti_message_hint``
once (Canvas deletes the cached launch when it makes the id_token,
``app/controllers/lti/ims/authentication_controller.rb``; Moodle deletes its login
record), so a link offered at the launch, after that, can only end in the platform's
error page.

So a login that the browser says is framed (``Sec-Fetch-Dest: iframe``, sent by every
current browser) gets this page instead of the redirect: it sets a test cookie with the
same attributes as the state cookie, and its script goes on to the platform's auth URL
when the browser kept it, or otherwise offers the untouched login in a new window.  A top-
level login (``document``) and a request without the header get the plain redirect.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from .html_pages import ScriptedPage, json_for_html, scripted_page

COOKIE = "ltikit_cookie_check"
"""The test cookie's name (its value is ``1``; it lives a minute)."""

COOKIE_MAX_AGE = 60

MAX_RELAUNCH_LENGTH = 3072
"""Login parameters longer than this make no link (proxies refuse such long URLs)."""

_SCRIPT = """
(function () {
  var c = JSON.parse(document.getElementById("ltikit-cookie-check").textContent);
  var kept = document.cookie.split(/;\\s*/).indexOf(c.cookie + "=1") >= 0;
  if (kept) { window.location.replace(c.next); return; }
  document.getElementById("ltikit-waiting").hidden = true;
  document.getElementById("ltikit-blocked").hidden = false;
})();
"""


def framed(headers: Mapping[str, str]) -> bool:
    """Did the browser say this request loads a frame's document?"""
    return str(headers.get("Sec-Fetch-Dest", "")).lower() in ("iframe", "frame")


def cookie_check_page(*, auth_url: str, relaunch_url: str | None) -> ScriptedPage:
    """Go on to ``auth_url`` if the test cookie was kept; else offer ``relaunch_url`` (the
    same login, not yet used) in a new window."""
    if relaunch_url:
        offer = (f"<p><a href='{html.escape(relaunch_url)}' target=_blank rel=noopener>"
                 "Open the tool in a new window</a></p>")
    else:
        offer = ("<p>Open the activity from the course in a new window (for example with "
                 "your browser's <em>Open link in new window</em>), or ask for the tool to "
                 "be set to open in a new window.</p>")
    config = json_for_html({"cookie": COOKIE, "next": auth_url})
    content = (
        "<p id=ltikit-waiting>Opening the tool&hellip;</p>"
        "<div id=ltikit-blocked hidden><h1 style='font-size:1.4rem'>This tool needs a new "
        "window</h1><p>Your browser blocks this tool's cookies inside the course page, so "
        f"it cannot open here.</p>{offer}</div>"
        f"<noscript><p><a href='{html.escape(auth_url)}'>Continue</a></p></noscript>"
        f"<script type=application/json id=ltikit-cookie-check>{config}</script>")
    return scripted_page("Opening the tool", content, _SCRIPT, styled=True)


def relaunch_url(login_url: str, params: dict[str, str] | None) -> str | None:
    """The tool's login URL that starts the same login again (for a new window); None when
    its parameters are too long for a link."""
    if not params or sum(len(v) for v in params.values()) > MAX_RELAUNCH_LENGTH:
        return None
    separator = "&" if urlsplit(login_url).query else "?"
    return f"{login_url}{separator}{urlencode(params)}"
