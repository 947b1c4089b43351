"""Deep Linking 2.0: the tool's answer to an ``LtiDeepLinkingRequest``.

The platform asks the tool for content (a teacher picks a quiz to add to a module, say); the
tool answers by POSTing a JWT it signs, ``LtiDeepLinkingResponse``, to the request's
``deep_link_return_url``, from the browser, with an auto-submitting form
(https://www.imsglobal.org/spec/lti-dl/v2p0).  The content items are checked against what
the request accepts (``accept_types``, ``accept_multiple``, ``accept_lineitem``) before
anything is signed, and the request's ``data`` is echoed back untouched.
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeepLinkingError as DeepLinkingError
from ..launch import DeepLinkingSettings
from .html_pages import ScriptedPage, scripted_page
from .registrations import Registration
from .tool_keys import ToolKeys

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
RESPONSE_LIFETIME = 300


def _clean(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None and v != {}}


@dataclass(frozen=True)
class LineItemSpec:
    """The gradebook column a returned ``ltiResourceLink`` should get."""

    score_maximum: float
    label: str | None = None
    resource_id: str | None = None
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _clean({"scoreMaximum": self.score_maximum, "label": self.label,
                       "resourceId": self.resource_id, "tag": self.tag})


@dataclass(frozen=True)
class ContentItem:
    """Base of the content item types; ``extra`` adds any other property as is."""

    type = ""
    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True)

    def fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, **_clean(self.fields()), "type": self.type}


@dataclass(frozen=True)
class LtiResourceLink(ContentItem):
    """A link that launches this tool (``ltiResourceLink``), optionally graded."""

    type = "ltiResourceLink"
    url: str | None = None
    title: str | None = None
    text: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)
    line_item: LineItemSpec | None = None
    iframe: Mapping[str, int] | None = None
    window: Mapping[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "text": self.text,
                "custom": dict(self.custom) or None,
                "lineItem": self.line_item.to_json() if self.line_item else None,
                "iframe": dict(self.iframe) if self.iframe else None,
                "window": dict(self.window) if self.window else None}


@dataclass(frozen=True)
class Link(ContentItem):
    type = "link"
    url: str = ""
    title: str | None = None
    text: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "text": self.text}


@dataclass(frozen=True)
class File(ContentItem):
    type = "file"
    url: str = ""
    title: str | None = None
    media_type: str | None = None
    expires_at: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "mediaType": self.media_type,
                "expiresAt": self.expires_at}


@dataclass(frozen=True)
class Html(ContentItem):
    type = "html"
    html: str = ""
    title: str | None = None
    text: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"html": self.html, "title": self.title, "text": self.text}


@dataclass(frozen=True)
class Image(ContentItem):
    type = "image"
    url: str = ""
    title: str | None = None
    width: int | None = None
    height: int | None = None

    def fields(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "width": self.width,
                "height": self.height}


def response_jwt(settings: DeepLinkingSettings, registration: Registration,
                 deployment_id: str, items: Iterable[ContentItem], tool_keys: ToolKeys, *,
                 message: str | None = None, log: str | None = None,
                 error_message: str | None = None, error_log: str | None = None,
                 clock: Callable[[], float] = time.time) -> str:
    """The signed ``LtiDeepLinkingResponse`` for ``items`` (checked against ``settings``)."""
    items = list(items)
    if not settings.return_url.startswith(("https://", "http://")):
        # The form posts there from the tool's page: never a javascript: or data: URL.
        raise DeepLinkingError("The platform's deep_link_return_url is not an http(s) URL.",
                               reason="bad_return_url")
    if settings.accept_types:
        refused = sorted({i.type for i in items} - set(settings.accept_types))
        if refused:
            raise DeepLinkingError(f"The platform does not accept {', '.join(refused)} items "
                                   f"here (it accepts {', '.join(settings.accept_types)}).")
    if settings.accept_multiple is False and len(items) > 1:
        raise DeepLinkingError("The platform accepts one item here.")
    if settings.accept_lineitem is False and any(
            isinstance(i, LtiResourceLink) and i.line_item for i in items):
        raise DeepLinkingError("The platform does not accept line items here.")
    now = int(clock())
    claims: dict[str, Any] = {
        "iss": registration.client_id, "aud": registration.issuer, "azp":
        registration.client_id, "iat": now, "exp": now + RESPONSE_LIFETIME,
        "nonce": secrets.token_urlsafe(16), CLAIM + "deployment_id": deployment_id,
        CLAIM + "message_type": "LtiDeepLinkingResponse", CLAIM + "version": "1.3.0",
        DL_CLAIM + "content_items": [i.to_json() for i in items]}
    if settings.data is not None:
        claims[DL_CLAIM + "data"] = settings.data
    for name, value in (("msg", message), ("log", log), ("errormsg", error_message),
                        ("errorlog", error_log)):
        if value:
            claims[DL_CLAIM + name] = value
    return tool_keys.sign(claims)


def auto_post_page(url: str, fields: Mapping[str, str], *,
                   title: str = "Returning to the course") -> ScriptedPage:
    """A page that POSTs ``fields`` to ``url`` at once (with a button for browsers without
    scripts)."""
    inputs = "".join(f"<input type=hidden name='{html.escape(k)}' value='{html.escape(v)}'>"
                     for k, v in fields.items())
    form = (f"<form id=ltikit-post method=post action='{html.escape(url)}'>{inputs}"
            "<noscript><button type=submit>Continue</button></noscript></form>")
    return scripted_page(title, form, "document.getElementById('ltikit-post').submit()")
