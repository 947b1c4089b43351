"""The few HTML pages ltikit answers with itself in LTI 1.3 flows (the platform-storage
login and check, the deep linking answer): one inline script each, allowed by a fresh CSP
nonce, nothing else loaded, never cached, no referrer."""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScriptedPage:
    body: str
    headers: dict[str, str]


_STYLE = ("font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
          "color:#222")


def json_for_html(data: Mapping[str, Any]) -> str:
    """``data`` as JSON for a ``<script type=application/json>`` element: no
    ``</script>``, no markup, no entities."""
    return (json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def scripted_page(title: str, content: str, script: str, *, styled: bool = False,
                  referrer_policy: str = "no-referrer") -> ScriptedPage:
    """``content`` (already escaped HTML) and ``script``; ``styled`` allows the inline style
    of a page the user reads (the others only pass through).  ``referrer_policy``
    ``same-origin`` for a page that posts to the tool itself: under ``no-referrer`` browsers
    send ``Origin: null`` with its form, and the tool could not tell it from a forgery."""
    nonce = secrets.token_urlsafe(16)
    body_style = f" style='{_STYLE}'" if styled else ""
    body = ("<!doctype html><html lang=en><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><body{body_style}>{content}"
            f"<script nonce='{nonce}'>{script}</script></body></html>")
    # No form-action: Chromium applies it to every redirect after a post too (a launch view
    # may redirect anywhere, e.g. to Canvas's authorization).
    policy = f"default-src 'none'; script-src 'nonce-{nonce}'; "
    if styled:
        policy += "style-src 'unsafe-inline'; "
    policy += "base-uri 'none'"
    return ScriptedPage(body, {"Content-Security-Policy": policy, "Cache-Control": "no-store",
                               "Referrer-Policy": referrer_policy})
