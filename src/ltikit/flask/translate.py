"""Werkzeug requests to :class:`ltikit.http.Request`, :class:`ltikit.http.Reply` to
Werkzeug responses: all the Flask adapter knows about HTTP."""

from __future__ import annotations

from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response

from ..http import Headers, Reply, Request

FORM = "application/x-www-form-urlencoded"


def to_request(request: WerkzeugRequest, public_url: str) -> Request:
    """The plain request (``public_url``: the URL the client used, proxies considered).
    Only urlencoded forms are read: LTI never posts anything else."""
    form = tuple(request.form.items(multi=True)) if request.mimetype == FORM else ()
    return Request(method=request.method, url=public_url, path=request.path,
                   query=tuple(request.args.items(multi=True)), form=form,
                   headers=Headers(request.headers.items()), cookies=request.cookies)


def to_response(reply: Reply) -> Response:
    response = Response(reply.body, status=reply.status, mimetype=reply.mimetype)
    for name, value in reply.headers:
        if name.lower() == "set-cookie":
            response.headers.add(name, value)
        else:
            response.headers[name] = value
    return response
