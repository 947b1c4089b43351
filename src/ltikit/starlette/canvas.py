"""An async client for Canvas's REST API as the launching user (``lti.canvas_http()``).

httpx's ``AsyncClient``, awaited on the event loop, with the token handling of the
canvasapi client (:class:`ltikit.canvas.client.CanvasTokenAuth`), from the same core:

* the user's access token, refreshed first when it is about to expire
  (:meth:`ltikit.canvas.tokens.CanvasTokens.access_token`, single-flight across workers),
  the refresh itself awaited on httpx too;
* a 401 with ``WWW-Authenticate`` (Canvas's sign that a new token would help) refreshes
  once and retries once; a second one drops the token and raises
  :class:`~ltikit.canvas.CanvasAuthorizationRequired` (the user authorizes again);
* 429 and 5xx raise :class:`~ltikit.errors.CanvasUnavailable` (a 503 page saying when to
  retry); no redirect is followed; every request has the Canvas API deadline.

The token store is the database: its work runs in a worker thread between the calls
(:mod:`ltikit._http_async`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import anyio
import anyio.to_thread
import httpx

from .. import _http_async
from ..canvas import CanvasAuthorizationRequired
from ..canvas.client import check_available
from ..canvas.instances import CanvasInstance
from ..canvas.oauth import CanvasOAuthClient
from ..canvas.tokens import CanvasTokens
from ..errors import CanvasUnavailable

__all__ = ["CanvasAuth", "canvas_http_client"]


class CanvasAuth(httpx.Auth):
    """httpx authentication with the user's Canvas token (see the module docstring)."""

    def __init__(self, tokens: CanvasTokens, instance: CanvasInstance, user_id: str,
                 oauth: CanvasOAuthClient, access_token: str, version: int,
                 platform_client: httpx.AsyncClient) -> None:
        self._tokens, self._instance, self._user_id = tokens, instance, user_id
        self._oauth = oauth
        self._token, self._version = access_token, version
        self._platform_client = platform_client  # for the token endpoint

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request,
                                                                   httpx.Response, None]:
        raise RuntimeError("the Canvas client of ltikit.starlette is async")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[
            httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        self._check(response)
        if response.status_code != 401 or "WWW-Authenticate" not in response.headers:
            return
        self._token, self._version = await _http_async.run(
            self._tokens.refresh_after_401_steps(self._instance, self._user_id, self._oauth,
                                                 self._version), self._platform_client)
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        self._check(response)
        if response.status_code == 401 and "WWW-Authenticate" in response.headers:
            await anyio.to_thread.run_sync(self._tokens.delete, self._instance, self._user_id)
            raise CanvasAuthorizationRequired(reason="canvas_token_refused")

    def _check(self, response: httpx.Response) -> None:
        check_available(self._instance, response.status_code,
                        response.headers.get("Retry-After"))


class _Deadline(httpx.AsyncBaseTransport):
    """A total deadline per request, body included (httpx's timeouts bound each wait for
    a byte, not the whole answer: a server trickling bytes would hold the call)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self._inner, self._seconds = inner, seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            with anyio.fail_after(self._seconds):
                response = await self._inner.handle_async_request(request)
                await response.aread()
        except TimeoutError:
            raise CanvasUnavailable(f"Canvas took longer than {self._seconds:g} s to answer.",
                                    reason="canvas_timeout", status=504) from None
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def canvas_http_client(instance: CanvasInstance, auth: CanvasAuth,
                       timeouts: tuple[float, float]) -> httpx.AsyncClient:
    """An ``AsyncClient`` on ``instance``'s REST API (``base_url`` ``.../api/v1``), each
    request within ``timeouts`` (connect, total seconds)."""
    connect, total = timeouts
    return httpx.AsyncClient(base_url=f"{instance.url}/api/v1", auth=auth,
                             follow_redirects=False,
                             timeout=httpx.Timeout(total, connect=connect),
                             transport=_Deadline(httpx.AsyncHTTPTransport(), total))
