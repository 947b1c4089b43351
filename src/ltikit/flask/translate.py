"""Werkzeug requests to :class:`ltikit.http.Request`, :class:`ltikit.http.Reply` to
Werkzeug responses: all the Flask adapter knows about HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from urllib.parse import parse_qsl

import werkzeug.formparser  # noqa: F401 - registers the "werkzeug.url_quote" error handler
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response

from ..errors import LTIMalformedRequest
from ..http import Headers, Reply, Request

FORM = "application/x-www-form-urlencoded"


def to_request(request: WerkzeugRequest, public_url: str | Callable[[], str]) -> Request:
    """The plain request (``public_url``: the URL the client used, proxies considered, or
    the function that works it out when a flow first needs it).  Only urlencoded POST
    forms are read: LTI never sends anything else."""
    # (A later page is a GET: no Content-Type to parse.)
    form = form_fields(request) if request.method == "POST" and request.mimetype == FORM \
        else ()
    return Request(method=request.method, url=public_url, path=request.path,
                   query=query_fields(request), form=form,
                   # Werkzeug's headers are case-insensitive: read in place.  Its cookies
                   # are parsed only if a flow asks for one (a launch never does).
                   headers=Headers.view(request.headers), cookies=_Cookies(request))


def query_fields(request: WerkzeugRequest) -> tuple[tuple[str, str], ...]:
    """The query string's parameters as Werkzeug's ``request.args`` reads them (the same
    ``parse_qsl`` call, without building the MultiDict: about 1.5 µs of every request,
    later pages included), in the order they came (a MultiDict groups a repeated name's
    values; the OAuth base string sorts them anyway).  A query string that is not UTF-8,
    on which ``request.args`` raises, is a 400.  tests/test_form_fields.py checks that
    both give each name the same values in the same order."""
    if "args" in request.__dict__:
        return tuple(request.args.items(multi=True))
    raw = request.query_string
    if not raw:
        return ()
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise LTIMalformedRequest("The query string is not valid text.",
                                  reason="bad_encoding") from None
    return _urlencoded(text)


def form_fields(request: WerkzeugRequest) -> tuple[tuple[str, str], ...]:
    """An urlencoded body's fields as Werkzeug's ``request.form`` reads them, in the order
    they came (see :func:`query_fields`).

    Werkzeug reads such a body with ``parse_qsl(body.decode(), keep_blank_values=True,
    errors="werkzeug.url_quote")`` and wraps the pairs in a MultiDict; doing only the first
    half on the body the adapter already read (``_AppState.bound``) costs about 28 µs of
    a 30-field launch where ``request.form`` costs 45 (bench/launch_vs_bare.py), and
    ``request.form`` stays Werkzeug's for views that read it.  A body that is not UTF-8
    gives no fields, as Werkzeug's parser does.  tests/test_form_fields.py checks on
    random bodies that both agree."""
    if "form" in request.__dict__:  # already parsed (a before_request hook read it)
        return tuple(request.form.items(multi=True))
    try:
        text = request.get_data(cache=True).decode()
    except UnicodeDecodeError:
        return ()
    return _urlencoded(text)


def _urlencoded(text: str) -> tuple[tuple[str, str], ...]:
    # Werkzeug's own call for request.args and request.form (werkzeug.sansio.request,
    # werkzeug.formparser): invalid UTF-8 in escapes stays percent-encoded.
    return tuple(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))


def to_response(reply: Reply) -> Response:
    # A reply names each header once, but for Set-Cookie: Werkzeug's headers take them
    # as they are (setting them one by one costs a scan of the headers each).
    return Response(reply.body, status=reply.status, headers=list(reply.headers),
                    mimetype=reply.mimetype)


class _Cookies(Mapping[str, str]):
    """The request's cookies, read-only, parsed on first use (about 10 µs otherwise spent
    on every launch)."""

    __slots__ = ("_request",)

    def __init__(self, request: WerkzeugRequest) -> None:
        self._request = request

    def __getitem__(self, name: str) -> str:
        return self._request.cookies[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._request.cookies)

    def __len__(self) -> int:
        return len(self._request.cookies)
