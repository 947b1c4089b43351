"""Helpers to test an LTI tool the way a platform talks to it.

Launches are signed with oauthlib's OAuth 1.0a ``Client``, an implementation independent
of the verifier in :mod:`ltikit.lti11`, so a test that passes here means a real platform's
launch would pass too::

    from ltikit.testing import launch_params, sign_launch

    signed = sign_launch("http://localhost/launch", launch_params(roles="Instructor"),
                         key="key", secret="secret")
    response = client.post(**signed.for_flask())
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import urlencode, urlsplit

from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
    Client,
)

FORM = "application/x-www-form-urlencoded"
_Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))


class Clock:
    """A clock for tests, to pass wherever ltikit takes ``clock=`` (launches, JWKS cache,
    tokens, states): ``clock()`` is the time, :meth:`advance` moves it on, so a test of an
    expiry does not sleep::

        clock = Clock()
        jwks = JWKSCache(engine, clock=clock)
        clock.advance(3600)
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def launch_params(**overrides: Any) -> dict[str, str]:
    """Parameters of a Canvas-like LTI 1.1 course-navigation launch by a teacher.

    Keyword arguments replace or add parameters; a value of ``None`` removes one.
    """
    params = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": "b8c2f1e6a4d0",
        "resource_link_title": "Example tool",
        "user_id": "535fa085f22b4655f48cd5a36a9215f64c062838",
        "roles": "Instructor",
        "ext_roles": "urn:lti:instrole:ims/lis/Instructor,urn:lti:role:ims/lis/Instructor,"
                     "urn:lti:sysrole:ims/lis/User",
        "lis_person_name_full": "Ada Teacher",
        "lis_person_name_given": "Ada",
        "lis_person_name_family": "Teacher",
        "lis_person_contact_email_primary": "ada@example.edu",
        "context_id": "4dde05e8ca1973bcca9bffc13e1548820eee93a3",
        "context_label": "BIO101",
        "context_title": "Introduction to Biology",
        "launch_presentation_locale": "en",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": "http://canvas.local/courses/1/external_content/success/external_tool_redirect",
        "tool_consumer_instance_guid": "7db438071375c02373713c12c73869ff2f470b68.canvas.local",
        "tool_consumer_instance_name": "Local University",
        "tool_consumer_info_product_family_code": "canvas",
        "tool_consumer_info_version": "cloud",
        "custom_canvas_user_id": "10000000000042",
        "custom_canvas_course_id": "10000000000001",
        "custom_canvas_api_domain": "canvas.local",
        "custom_canvas_enrollment_state": "active",
        "oauth_callback": "about:blank",
    }
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return params


@dataclass
class SignedLaunch:
    """A signed request, ready to send with any HTTP client."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None

    def for_flask(self) -> dict[str, Any]:
        """Keyword arguments for ``app.test_client().open(**...)``."""
        parts = urlsplit(self.url)
        return {"method": self.method, "path": parts.path or "/",
                "query_string": parts.query, "headers": self.headers, "data": self.body,
                "base_url": f"{parts.scheme}://{parts.netloc}"}

    def for_requests(self) -> dict[str, Any]:
        """Keyword arguments for ``requests.request(**...)``."""
        return {"method": self.method, "url": self.url, "headers": self.headers,
                "data": self.body}


def sign_launch(url: str, params: dict[str, str], *, key: str, secret: str,
                method: str = "POST", where: Literal["body", "query", "header"] = "body",
                signature_method: str = SIGNATURE_HMAC_SHA1, timestamp: int | None = None,
                nonce: str | None = None) -> SignedLaunch:
    """Sign an LTI 1.1 message as a platform does.

    ``where`` says where the OAuth parameters go: the form body (what Canvas does), the
    query string (GET launches), or an ``Authorization: OAuth`` header.
    """
    signature_type = {"body": SIGNATURE_TYPE_BODY, "query": SIGNATURE_TYPE_QUERY,
                      "header": SIGNATURE_TYPE_AUTH_HEADER}[where]
    client = Client(key, client_secret=secret, signature_method=signature_method,
                    signature_type=signature_type,
                    timestamp=str(int(time.time()) if timestamp is None else timestamp),
                    nonce=nonce or uuid.uuid4().hex)
    verb = method.upper()
    if verb not in _METHODS:
        raise ValueError(f"not an HTTP method: {method!r}")
    method = verb
    if method == "GET" or where == "query":
        separator = "&" if "?" in url else "?"
        full_url = f"{url}{separator}{urlencode(params)}" if params else url
        signed_url, headers, _ = client.sign(full_url, http_method=cast(_Method, method))
        return SignedLaunch(method, signed_url, dict(headers))
    signed_url, headers, body = client.sign(url, http_method=cast(_Method, method), body=params,
                                            headers={"Content-Type": FORM})
    return SignedLaunch(method, signed_url, dict(headers), body)
