"""Starlette requests to :class:`ltikit.http.Request`, :class:`ltikit.http.Reply` to
Starlette responses: all the Starlette adapter knows about HTTP.

The body is read here, bounded: a request larger than ``LTIKIT_MAX_REQUEST_BYTES`` or with
more than ``LTIKIT_MAX_FORM_FIELDS`` fields is refused (413) before it is parsed, as the
Flask adapter does; only urlencoded POST bodies are read (LTI sends nothing else).
"""

from __future__ import annotations

import codecs
from urllib.parse import parse_qsl

from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from ..errors import LTIRequestTooLarge
from ..http import Headers, Reply, Request, forwarded
from ..settings import Settings

FORM = "application/x-www-form-urlencoded"

__all__ = ["public_url", "to_request", "to_response"]


def public_url(request: StarletteRequest, trusted_proxies: int) -> str:
    """The URL the client used, without the query: what a platform signed.  Behind
    ``trusted_proxies`` proxies, their ``X-Forwarded-Proto`` and ``X-Forwarded-Host``."""
    url = request.url
    scheme, netloc = url.scheme, url.netloc
    if trusted_proxies > 0:
        scheme = forwarded(request.headers.get("x-forwarded-proto"), trusted_proxies) or scheme
        netloc = forwarded(request.headers.get("x-forwarded-host"), trusted_proxies) or netloc
    return f"{scheme}://{netloc}{url.path}"



async def to_request(request: StarletteRequest, settings: Settings) -> Request:
    """The plain request, its body read within the limits."""
    limit, fields = settings.max_request_bytes, settings.max_form_fields
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise LTIRequestTooLarge(f"The request is larger than {limit} bytes.")
    query = request.url.query
    if query.count("&") >= fields:
        raise LTIRequestTooLarge(f"The request has more than {fields} fields.")
    form: tuple[tuple[str, str], ...] = ()
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "POST" and content_type == FORM:
        body = bytearray()
        async for chunk in request.stream():  # a chunked body stops being read at the limit
            body += chunk
            if len(body) > limit:
                raise LTIRequestTooLarge(f"The request is larger than {limit} bytes.")
        # Kept for the view: Starlette's request.body() and request.form() read it again.
        request._body = bytes(body)
        if body.count(b"&") >= fields:
            raise LTIRequestTooLarge(f"The request has more than {fields} fields.")
        try:
            form = _urlencoded(bytes(body).decode())
        except UnicodeDecodeError:
            form = ()  # as the Flask adapter: a body that is not UTF-8 has no fields
    return Request(method=request.method,
                   url=public_url(request, settings.trusted_proxies),
                   path=request.url.path.removeprefix(request.scope.get("root_path", "")),
                   query=_urlencoded(query), form=form,
                   headers=Headers.view(request.headers), cookies=request.cookies)


def _keep_escaped(error: UnicodeError) -> tuple[str, int]:
    """Bytes of a percent escape that are not UTF-8 stay escaped (``%FF``), as Werkzeug
    reads them for the Flask adapter: both adapters see the same values."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(f"%{byte:02X}" for byte in bad), error.end


codecs.register_error("ltikit.url_quote", _keep_escaped)


def _urlencoded(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    return tuple(parse_qsl(text, keep_blank_values=True, errors="ltikit.url_quote"))


def to_response(reply: Reply) -> Response:
    response = Response(reply.body, status_code=reply.status, media_type=reply.mimetype)
    for name, value in reply.headers:
        response.headers.append(name, value)
    return response
