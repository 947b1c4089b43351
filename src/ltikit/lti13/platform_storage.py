"""LTI platform storage: keeping the login's secret in the platform's window.

When a browser refuses the tool's cookies inside the platform's iframe (Safari, or any
browser set to block them), the tool cannot recognise, at launch, the browser that started
the login.  1EdTech's *LTI Client Side postMessages* and *LTI postMessage Storage* (and
*LTI OIDC Login with LTI Client Side postMessages*) give the tool a place to keep a value
instead: the platform's own window, reached with ``postMessage``, which stores values per
tool origin.  The login initiation names the frame to talk to in ``lti_storage_target``
(Canvas: ``post_message_forwarding``, a frame on its OIDC auth origin).

ltikit uses it only when the state cookie did not come back:

1. The login page puts a random secret under a per-login key (``lti.put_data``), waits for
   the platform's answer (or five seconds), then goes to the platform's auth URL.  The
   state, signed by the tool, carries only the secret's SHA-256.  (Both pages send their
   message again every half second until answered: the platform's storage frame loads
   beside the tool's and may not be listening yet.)
2. The launch, arriving without the cookie, answers with a page that asks the platform for
   the secret back (``lti.get_data``) and posts the launch again with it; the server checks
   it against the digest in the state, then validates the id_token as usual.

Messages go only to the platform's auth-URL origin, and answers are accepted only from that
origin with the message id that was sent (the specifications' rules: never ``*``).  A page
that forges a launch into a frame of its own gets no answer, and the launch stops there.

The secret is taken only from the check page itself: a same-origin POST (the browser's
``Origin`` is the tool's, and ``Sec-Fetch-Site`` says ``same-origin`` where it is sent).
Otherwise someone could start a login of their own, read its secret from the login page,
and auto-post their id_token, state and secret into another person's browser from any
site: that person would be inside the tool as them (login CSRF).  And the storage is used
only for registrations that say their platform offers it (``platform_storage``): the
``lti_storage_target`` asking for it comes in an unsigned request.
Like any launch that works without cookies, it cannot stop a person who hands over a launch
of their own that completed elsewhere (the same holds for a launch id carried in a URL).

These pages are plain HTML with one inline script (:mod:`.html_pages`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..urls import origin as origin_of
from .html_pages import ScriptedPage, json_for_html, scripted_page

# How long a page waits for the platform's answer before giving up on storage.  The answer
# takes milliseconds; the wait only ends a failure, so it is generous: a student's slow
# laptop, busy loading the course page's frames, may take seconds to answer.
ANSWER_TIMEOUT_MS = 5000

STORAGE_FIELD = "ltikit_storage_secret"

_SCRIPT = """
(function () {
  var c = JSON.parse(document.getElementById("ltikit-storage").textContent);
  function target() {
    if (window.parent === window) return window.opener || null;
    if (c.target === "_parent") return window.parent;
    try { return window.parent.frames[c.target] || window.parent; }
    catch (e) { return window.parent; }
  }
  var id = "ltikit-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
  var finished = false, resend = null;
  function finish(value) {
    if (finished) return;
    finished = true;
    clearInterval(resend);
    if (c.mode === "put") { window.location.replace(c.next); return; }
    if (typeof value === "string" && value) {
      var form = document.getElementById("ltikit-launch");
      form.elements[c.field].value = value;
      form.submit();
    } else {
      document.getElementById("ltikit-waiting").hidden = true;
      document.getElementById("ltikit-failed").hidden = false;
    }
  }
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== c.origin || !data || typeof data !== "object") return;
    if (data.subject !== "lti." + c.mode + "_data.response" || data.message_id !== id) return;
    finish(data.error ? null : data.value);
  });
  if (!target()) { finish(null); return; }
  var message = {subject: "lti." + c.mode + "_data", message_id: id, key: c.key};
  if (c.mode === "put") message.value = c.value;
  // Sent again every half second until answered: the platform's storage frame loads
  // beside this one, and a message sent before its listener exists is lost.  Both
  // messages are idempotent (the same key and value, the same id).
  function send() {
    var to = target();  // the storage frame may appear after this page
    if (!finished && to) to.postMessage(message, c.origin);
  }
  send();
  resend = setInterval(send, 500);
  setTimeout(function () { finish(null); }, c.timeout);
})();
"""


def platform_origin(auth_login_url: str) -> str:
    """The origin postMessages go to: the platform's OIDC auth URL's (as the spec says)."""
    parts = urlsplit(auth_login_url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(title: str, content: str, config: Mapping[str, Any], *,
          referrer_policy: str = "no-referrer") -> ScriptedPage:
    data = f"<script type=application/json id=ltikit-storage>{json_for_html(config)}</script>"
    return scripted_page(title, content + data, _SCRIPT, styled=True,
                         referrer_policy=referrer_policy)


def login_page(*, auth_url: str, origin: str, target: str, key: str,
               secret: str) -> ScriptedPage:
    """The login's answer when the platform offers storage: put the secret, then go on
    to the platform's auth URL (also without an answer: the cookie may still work)."""
    content = ("<p id=ltikit-waiting>Opening the tool&hellip;</p>"
               f"<noscript><p><a href='{html.escape(auth_url)}'>Continue</a></p></noscript>")
    return _page("Opening the tool", content, {
        "mode": "put", "origin": origin, "target": target, "key": key, "value": secret,
        "next": auth_url, "timeout": ANSWER_TIMEOUT_MS})


def check_page(*, action: str, fields: dict[str, str], origin: str, target: str,
               key: str) -> ScriptedPage:
    """The launch's answer when the state cookie did not come back: fetch the login's
    secret from the platform and post the launch again with it.  When that fails it says
    what to do; it links to no relaunch, since the platform has used up the login's
    ``lti_message_hint``."""
    inputs = "".join(f"<input type=hidden name='{html.escape(name)}' "
                     f"value='{html.escape(value)}'>" for name, value in fields.items())
    retry = ("<p>Open the activity from the course again in a new window (or ask for the "
             "tool to be set to open in a new window).</p>")
    content = (
        "<p id=ltikit-waiting>Opening the tool&hellip;</p>"
        "<div id=ltikit-failed hidden><h1 style='font-size:1.4rem'>This launch could not "
        "be verified</h1><p>Your browser blocks this tool's cookies inside the course page, "
        "and the course page did not confirm that this launch started here.</p>"
        f"{retry}</div>"
        f"<form id=ltikit-launch method=post action='{html.escape(action)}'>{inputs}"
        f"<input type=hidden name={STORAGE_FIELD} value=''></form>")
    return _page("Opening the tool", content, {
        "mode": "get", "origin": origin, "target": target, "key": key,
        "field": STORAGE_FIELD, "timeout": ANSWER_TIMEOUT_MS},
        # Its form posts to the tool: the browser's Origin must say so (see above).
        referrer_policy="same-origin")


def posted_by_check_page(headers: Mapping[str, str], tool_url: str) -> bool:
    """Did the browser say this POST came from a page of the tool's own origin (the check
    page), not from another site?  ``Sec-Fetch-Site: same-origin`` says so where browsers
    send it (Chromium, Firefox, Safari 16.4+); without it, ``Origin`` (sent with every form
    POST; the check page's referrer policy keeps it from being ``null``) must be the tool's.
    """
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    mine, sent = origin_of(tool_url), headers.get("Origin")
    return mine is not None and sent is not None and origin_of(sent) == mine
