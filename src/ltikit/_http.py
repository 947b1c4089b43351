"""Outbound HTTP with a total deadline (private: used by the JWKS cache and service clients).

``requests`` (and urllib3 beneath it) have a connect timeout and a *read* timeout, which
bounds each wait for a byte, not the call: a server that sends one byte every second and a
half holds a read timeout of two seconds forever.  A launch that fetches a platform's keys
must end within a few seconds whatever the other side does, so here every request has a
*total* deadline too:

* sessions from :func:`new_session` open connections whose sockets are registered with
  the deadline of the request that uses them;
* when the deadline passes, a timer shuts those sockets down, which ends any blocked read
  at once; the request then fails with :class:`DeadlineExceeded` (a ``requests.Timeout``);
* :func:`send` reads the whole body within the same deadline, up to a size limit, and
  never follows a redirect; given ``allow_address``, it sends nothing to a server whose
  address that refuses (checked on the connected socket, so a host name that resolves to
  an internal address is refused too).

Code that calls a platform is written once, as *steps* (sans-IO, as h11 or Werkzeug's
``sansio`` are): a generator that yields each request it needs as a :class:`Call` and gets
the ``requests.Response`` back, or the ``requests`` exception of a failure thrown in.
:func:`run` drives steps with :func:`send` for synchronous code (Flask); an async adapter
drives the same steps with httpx's async client (:mod:`ltikit._http_async`), so a slow
platform holds no thread there.  The work between two calls (the database) stays in the
steps, so both drivers keep the same checks, leases and caches.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()
_T = TypeVar("_T")


class DeadlineExceeded(requests.Timeout):
    """The whole request (connect, send, headers and body) took longer than allowed."""


class BodyTooLarge(requests.RequestException):
    """The response body was larger than the caller accepts."""


class AddressRefused(requests.ConnectionError):
    """The server's address is one the caller does not call (an internal one, say)."""


class _Watch:
    """The sockets of one request, shut down together when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self.allow_address: Any = None
        self.refused: str | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shutdown(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watch_socket(connection: Any) -> None:
    watch = getattr(_local, "watch", None)
    if watch is not None:
        watch.add(connection.sock)


def _check_address(connection: Any) -> None:
    watch = getattr(_local, "watch", None)
    if watch is None or watch.allow_address is None or connection.sock is None:
        return
    host = connection.sock.getpeername()[0]
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not watch.allow_address(address):
        watch.refused = str(address)
        _shutdown(connection.sock)
        raise OSError(f"refused to call {address}")


class _Watched:
    """Registers the connection's socket with the current request's deadline."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch_socket(self)
        _check_address(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch_socket(self)  # a kept-alive connection is watched again for this request
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """A transport adapter whose connections can be cut at a deadline.

    With ``timeouts=(connect, total)``, every request sent through it without a timeout of
    its own (canvasapi sends none) gets that connect timeout and ends within ``total``
    seconds, body included (unless streamed: then :func:`send` bounds the read).
    """

    def __init__(self, timeouts: tuple[float, float] | None = None, **kwargs: Any) -> None:
        self.timeouts = timeouts
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             timeout: Any = None, **kwargs: Any) -> requests.Response:
        if self.timeouts is None or stream or getattr(_local, "watch", None) is not None:
            return super().send(request, stream=stream, timeout=timeout, **kwargs)
        connect, total = self.timeouts
        with _deadline(total) as watch:
            try:
                response = super().send(request, stream=False, timeout=timeout or (
                    min(connect, total), total), **kwargs)
                response.content  # noqa: B018 - read the body within the deadline
            except requests.RequestException:
                if watch.expired:
                    raise DeadlineExceeded(f"no complete answer within {total} s") from None
                raise
            if watch.expired:
                raise DeadlineExceeded(f"no complete answer within {total} s")
        return response


def new_session(timeouts: tuple[float, float] | None = None) -> requests.Session:
    """A ``requests.Session`` whose requests end at a total deadline: the one given to
    :func:`send`, or ``timeouts=(connect, total)`` for every request sent without one."""
    session = requests.Session()
    mount(session, DeadlineAdapter(timeouts))
    return session


def mount(session: requests.Session, adapter: DeadlineAdapter) -> None:
    """Send an existing session's (canvasapi's) http and https requests through
    ``adapter``."""
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def lease_seconds(total_timeout: float) -> int:
    """How long a lease on a shared token lasts while its holder asks for a new one: the
    request's own deadline plus two seconds, so a holder that died is replaced soon."""
    return math.ceil(total_timeout) + 2


def timeouts(value: Any, default: tuple[float, float]) -> tuple[float, float]:
    """``(connect, total)`` seconds from a setting: ``None`` (the default), a number (both),
    a pair, or a string such as ``"3 15"``."""
    if value is None:
        return default
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    elif isinstance(value, int | float):
        value = (value, value)
    try:
        connect, total = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"a timeout is seconds or (connect, total) seconds, not {value!r}") \
            from None
    if not (connect > 0 and total > 0):
        raise ValueError(f"timeouts must be positive, not {value!r}")
    return min(connect, total), total


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[_Watch]:
    watch = _Watch(seconds)
    previous = getattr(_local, "watch", None)
    _local.watch = watch
    watch.start()
    try:
        yield watch
    finally:
        watch.cancel()
        _local.watch = previous


def send(session: requests.Session, method: str, url: str, *, connect_timeout: float,
         total_timeout: float, max_bytes: int | None = None,
         allow_address: Callable[[Any], bool] | None = None,
         **kwargs: Any) -> tuple[requests.Response, bytes]:
    """``(response, body)`` of one request, redirects not followed, the body read in full
    (at most ``max_bytes``), all within ``total_timeout`` seconds.

    Raises :class:`DeadlineExceeded` when the deadline passes, :class:`BodyTooLarge`,
    :class:`AddressRefused` when ``allow_address(ip)`` refuses the server's address (only
    on a session made by :func:`new_session`, whose connections are checked), or the
    ``requests`` exception of any other failure.  With a session not made by
    :func:`new_session` the deadline is checked between reads only.
    """
    started = time.monotonic()
    read_timeout = max(total_timeout, 0.001)
    with _deadline(total_timeout) as watch:
        watch.allow_address = allow_address
        try:
            response = session.request(method, url, stream=True, allow_redirects=False,
                                        timeout=(min(connect_timeout, read_timeout),
                                                 read_timeout), **kwargs)
            try:
                chunks, size = [], 0
                for chunk in response.iter_content(16384):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BodyTooLarge(f"the response is larger than {max_bytes} bytes")
                    chunks.append(chunk)
                    if time.monotonic() - started > total_timeout:
                        raise DeadlineExceeded(f"no complete answer within {total_timeout} s")
            finally:
                response.close()
            if watch.expired:  # a body without a length ends where the socket was shut
                raise DeadlineExceeded(f"no complete answer within {total_timeout} s")
        except requests.RequestException:
            if watch.refused is not None:
                raise AddressRefused(f"{watch.refused} is not an address this call may "
                                     "reach") from None
            if watch.expired or time.monotonic() - started > total_timeout:
                raise DeadlineExceeded(f"no complete answer within {total_timeout} s") \
                    from None
            raise
    body = b"".join(chunks)
    # The body is read: let response.json(), .text and .content answer from it.
    response._content = body
    return response, body


@dataclass(frozen=True)
class Call:
    """One request that steps need, described (see the module docstring).

    ``data``: a form (a mapping, sent form-encoded) or a body as it is sent.  ``session``:
    the caller's ``requests`` session, used by :func:`run` (tests give their own); the async
    driver has its own client.
    """

    method: str
    url: str
    connect_timeout: float
    total_timeout: float
    max_bytes: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None
    data: Mapping[str, str] | str | None = None
    session: requests.Session | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Pause:
    """A wait that steps need (for another worker's token, say): :func:`run` calls
    ``sleep(seconds)``; an async driver awaits the time instead, holding no thread."""

    seconds: float
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)


# What calls a platform: yields a Call (or a Pause), receives the call's response (None
# after a pause), returns a value.
Steps = Generator[Call | Pause, requests.Response | None, _T]


def request(method: str, url: str, **fields: Any) -> Steps[requests.Response]:
    """The step of one request (``fields``: those of :class:`Call`), for steps to
    ``yield from``: its response, or its failure raised."""
    response = yield Call(method, url, **fields)
    if response is None:  # pragma: no cover - a driver's mistake, not the platform's
        raise RuntimeError("a Call was answered without a response")
    return response


def advance(steps: Steps[Any], response: requests.Response | None,
            error: requests.RequestException | None) -> tuple[bool, Any]:
    """Give ``steps`` the last call's response (``None`` to start them, or after a pause) or
    its failure: ``(False, next Call or Pause)``, or ``(True, their value)`` at the end.
    (The end is a flag, not StopIteration, which cannot cross into a coroutine.)"""
    try:
        return False, steps.throw(error) if error is not None else steps.send(response)
    except StopIteration as done:
        return True, done.value


def run(steps: Steps[_T]) -> _T:
    """The value of ``steps``, their calls sent here and now with :func:`send`."""
    response: requests.Response | None = None
    error: requests.RequestException | None = None
    while True:
        done, call = advance(steps, response, error)
        if done:
            return call  # type: ignore[no-any-return]
        if isinstance(call, Pause):
            call.sleep(call.seconds)
            response, error = None, None
            continue
        try:
            response, error = send(call.session or _default_session(), call.method,
                                   call.url, connect_timeout=call.connect_timeout,
                                   total_timeout=call.total_timeout, max_bytes=call.max_bytes,
                                   headers=dict(call.headers), params=call.params,
                                   data=call.data)[0], None
        except requests.RequestException as exc:
            response, error = None, exc


def _default_session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = new_session()
    return session
