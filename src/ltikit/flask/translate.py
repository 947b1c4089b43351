"""Werkzeug requests to :class:`ltikit.http.Request`, :class:`ltikit.http.Reply` to
Werkzeug responses: all the Flask adapter knows about HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response

from ..http import Headers, Reply, Request

FORM = "application/x-www-form-urlencoded"


def to_request(request: WerkzeugRequest, public_url: str | Callable[[], str]) -> Request:
    """The plain request (``public_url``: the URL the client used, proxies considered, or
    the function that works it out when a flow first needs it).  Only urlencoded POST
    forms are read: LTI never sends anything else."""
    # (A later page is a GET: no Content-Type to parse.)
    form = tuple(request.form.items(multi=True)) \
        if request.method == "POST" and request.mimetype == FORM else ()
    return Request(method=request.method, url=public_url, path=request.path,
                   query=tuple(request.args.items(multi=True)), form=form,
                   # Werkzeug's headers are case-insensitive: read in place.  Its cookies
                   # are parsed only if a flow asks for one (a launch never does).
                   headers=Headers.view(request.headers), cookies=_Cookies(request))


def to_response(reply: Reply) -> Response:
    response = Response(reply.body, status=reply.status, mimetype=reply.mimetype)
    for name, value in reply.headers:
        if name.lower() == "set-cookie":
            response.headers.add(name, value)
        else:
            response.headers[name] = value
    return response


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
