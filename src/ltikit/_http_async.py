"""Steps (:mod:`ltikit._http`) driven on an event loop: their calls sent with httpx's async
client, the work between two calls (the database) run in a worker thread.

A platform that takes its whole deadline to answer then holds a socket and a coroutine,
not a thread: a worker serves its other requests, and other users' calls to other
platforms, while it waits.  The guarantees are those of :func:`ltikit._http.send`, kept
here for httpx: one deadline for the whole call (connect, headers and body), the body read
in full up to the call's size limit, no redirect followed, and the failure given to the
steps as the same ``requests`` exception, so the steps' handling of it is the one code.

Private: used by the async adapters (:mod:`ltikit.starlette`).  Needs ``httpx`` and
``anyio`` (the ``starlette`` and ``fastapi`` extras).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
import httpx
import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from ._http import BodyTooLarge, Call, DeadlineExceeded, Pause, Steps, advance

_T = TypeVar("_T")


async def run(steps: Steps[_T], client: httpx.AsyncClient) -> _T:
    """The value of ``steps``, each call awaited on ``client``, each pause on the loop."""
    response: requests.Response | None = None
    error: requests.RequestException | None = None
    while True:
        done, value = await anyio.to_thread.run_sync(advance, steps, response, error)
        if done:
            return value  # type: ignore[no-any-return]
        if isinstance(value, Pause):
            await anyio.sleep(value.seconds)
            response, error = None, None
            continue
        try:
            response, error = await send(client, value), None
        except requests.RequestException as exc:
            response, error = None, exc


async def send(client: httpx.AsyncClient, call: Call) -> requests.Response:
    """``call``'s response, read in full within its deadline, as a ``requests.Response``
    (headers read as ``http.client`` reads them), or the ``requests`` exception that
    :func:`ltikit._http.send` raises for the same failure."""
    total = max(call.total_timeout, 0.001)
    form = call.data if not isinstance(call.data, str) else None
    request = client.build_request(
        call.method, call.url, headers=dict(call.headers), params=call.params,
        data=form, content=call.data if isinstance(call.data, str) else None,
        timeout=httpx.Timeout(total, connect=min(call.connect_timeout, total)))
    try:
        with anyio.fail_after(total):
            answer = await client.send(request, stream=True, follow_redirects=False)
            try:
                chunks, size = [], 0
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if call.max_bytes is not None and size > call.max_bytes:
                        raise BodyTooLarge(
                            f"the response is larger than {call.max_bytes} bytes")
                    chunks.append(chunk)
            finally:
                await answer.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise DeadlineExceeded(f"no complete answer within {call.total_timeout} s") from None
    except httpx.HTTPError as exc:
        raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from None
    return _as_requests_response(answer, b"".join(chunks))


def _as_requests_response(answer: httpx.Response, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status_code
    response.reason = answer.reason_phrase
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for raw_name, raw_value in answer.headers.raw:
        # Latin-1, as http.client (under requests) reads header bytes; repeated fields
        # joined with ", " as it joins them.
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response.headers = headers
    response.encoding = get_encoding_from_headers(headers)
    response.url = str(answer.url)
    response._content = body
    return response


class PerLoop(Generic[_T]):
    """One value per running asyncio event loop, made by ``make`` when first asked for:
    httpx's pools and AnyIO's limiters belong to the loop that made them (a test client or
    a second app may run another loop in the same process)."""

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make = make
        self._by_loop: weakref.WeakKeyDictionary[Any, _T] = weakref.WeakKeyDictionary()

    def get(self) -> _T:
        """This loop's value; RuntimeError outside an asyncio event loop."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = self._make()
        return found

    def pop(self) -> _T | None:
        """This loop's value, forgotten (``None`` if it had none)."""
        return self._by_loop.pop(asyncio.get_running_loop(), None)


class Clients:
    """One ``httpx.AsyncClient`` per event loop, made when first asked for and closed by
    :meth:`aclose`."""

    def __init__(self) -> None:
        # No redirects: the URL the registration allows is the one called.  Proxies from
        # the environment, as requests uses them.  Timeouts come with each call.
        self._clients = PerLoop(lambda: httpx.AsyncClient(follow_redirects=False))

    def client(self) -> httpx.AsyncClient:
        return self._clients.get()

    async def aclose(self) -> None:
        """Close this loop's client (an app's shutdown)."""
        found = self._clients.pop()
        if found is not None:
            await found.aclose()
