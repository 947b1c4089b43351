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
  never follows a redirect.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


class DeadlineExceeded(requests.Timeout):
    """The whole request (connect, send, headers and body) took longer than allowed."""


class BodyTooLarge(requests.RequestException):
    """The response body was larger than the caller accepts."""


class _Watch:
    """The sockets of one request, shut down together when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
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


def _watch_socket(connection: HTTPConnection) -> None:
    watch = getattr(_local, "watch", None)
    if watch is not None:
        watch.add(connection.sock)


class _HTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch_socket(self)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch_socket(self)  # a kept-alive connection is watched again for this request
        super().request(*args, **kwargs)


class _HTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch_socket(self)

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch_socket(self)
        super().request(*args, **kwargs)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def new_session() -> requests.Session:
    """A ``requests.Session`` whose requests :func:`send` can end at a total deadline."""
    session = requests.Session()
    adapter = _DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
         **kwargs: Any) -> tuple[requests.Response, bytes]:
    """``(response, body)`` of one request, redirects not followed, the body read in full
    (at most ``max_bytes``), all within ``total_timeout`` seconds.

    Raises :class:`DeadlineExceeded` when the deadline passes, :class:`BodyTooLarge`, or
    the ``requests`` exception of any other failure.  With a session not made by
    :func:`new_session` the deadline is checked between reads only.
    """
    started = time.monotonic()
    read_timeout = max(total_timeout, 0.001)
    with _deadline(total_timeout) as watch:
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
            if watch.expired or time.monotonic() - started > total_timeout:
                raise DeadlineExceeded(f"no complete answer within {total_timeout} s") \
                    from None
            raise
    return response, b"".join(chunks)
