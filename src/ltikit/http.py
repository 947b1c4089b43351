"""The plain request and reply that ltikit's protocol flows work on.

The flows (:mod:`ltikit.lti13.flow`, :mod:`ltikit.canvas.flow`) decide what to do with a
request and never see a web framework: an adapter (:mod:`ltikit.flask`, later Starlette)
builds a :class:`Request` from its framework's request, and turns the :class:`Reply` a
flow answers with into its framework's response.  So every security decision is made once,
in one place, and can be tested without a framework, as Werkzeug's ``sansio`` package and
authlib's ``base_client`` do.

A :class:`Request` holds what was already parsed and bounded by the adapter (the adapter
refuses oversized bodies before parsing them); its ``url`` is the URL the client used
(the one a platform signed), which only the adapter can know behind proxies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol

__all__ = ["Headers", "Reply", "Request", "forwarded"]

Pairs = tuple[tuple[str, str], ...]


class HeaderSource(Protocol):
    """A framework's case-insensitive headers (Werkzeug's, Starlette's)."""

    def get(self, name: str) -> str | None: ...

    def keys(self) -> Iterable[str]: ...


class Headers(Mapping[str, str]):
    """Read-only headers whose names are case-insensitive (the first of repeated ones)."""

    __slots__ = ("_items",)

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        folded: dict[str, str] = {}
        for name, value in items:
            folded.setdefault(name.lower(), value)
        self._items = folded

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    @staticmethod
    def view(source: HeaderSource) -> Headers:
        """An adapter's own headers, read in place: ``source`` must already be
        case-insensitive and answer the first of repeated headers (Werkzeug's and
        Starlette's are).  Copying every header of every request costs more than the few
        a flow reads (about 7 µs of a launch's few hundred)."""
        return _HeadersView(source)


class _HeadersView(Headers):
    __slots__ = ("_source",)

    def __init__(self, source: HeaderSource) -> None:
        self._source = source

    def __getitem__(self, name: str) -> str:
        value = self._source.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._source.get(name) is not None

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = self._source.get(name)
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        # keys(): iterating Werkzeug's headers gives (name, value) pairs.
        return iter(dict.fromkeys(name.lower() for name in self._source.keys()))  # noqa: SIM118

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class Request:
    """An HTTP request, already parsed, framework-free, read-only.

    ``url`` is the public URL without its query (scheme, host, path), as the client sent
    it; an adapter may give it as a function, called once when a flow first reads it: only
    new launches and logins need it, and it costs a later page several microseconds
    (Werkzeug rebuilds and re-quotes it).

    The attributes are ``Final`` (a type checker refuses assignments) rather than guarded
    at run time: a frozen class pays ``object.__setattr__`` per field, about 1.5 µs of
    every request.
    """

    __slots__ = ("_url", "cookies", "form", "headers", "method", "path", "query")

    def __init__(self, method: str, url: str | Callable[[], str], path: str = "/",
                 query: Pairs = (), form: Pairs = (),
                 headers: Mapping[str, str] | None = None,
                 cookies: Mapping[str, str] | None = None) -> None:
        self.method: Final[str] = method if method.isupper() else method.upper()
        self._url = url
        self.path: Final[str] = path
        """The path under the app (for log lines and local redirects)."""
        self.query: Final[Pairs] = query
        self.form: Final[Pairs] = form
        # (The class test first: isinstance() on an ABC costs more than the rest here.)
        self.headers: Final[Mapping[str, str]] = headers \
            if type(headers) is _HeadersView or isinstance(headers, Headers) \
            else Headers(headers or {})
        # A read-only view (an adapter's) is kept as it is; anything else is copied.
        self.cookies: Final[Mapping[str, str]] = cookies \
            if cookies is not None and not isinstance(cookies, dict) \
            else MappingProxyType(dict(cookies or {}))

    @property
    def url(self) -> str:
        url = self._url
        if not isinstance(url, str):
            url = self._url = str(url())
        return url

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.url!r}, path={self.path!r})"

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive), or None."""
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        """The first query parameter ``name``, or None."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def field(self, name: str) -> str | None:
        """The first form field ``name``, or None."""
        # A plain scan: a flow looks up one or two fields (indexing the 30 fields of a
        # launch costs more).
        for key, value in self.form:
            if key == name:
                return value
        return None

    def value(self, name: str) -> str | None:
        """The query parameter, else the form field (Werkzeug's ``request.values``)."""
        found = self.arg(name)
        return found if found is not None else self.field(name)

    def values(self) -> dict[str, str]:
        """Query and form together, the first value of each name (query first)."""
        merged: dict[str, str] = {}
        for name, value in (*self.query, *self.form):
            merged.setdefault(name, value)
        return merged


class Reply(NamedTuple):
    """What a flow answers: a status, headers (``Set-Cookie`` lines among them) and an
    HTML body, for the adapter to send as it is.  (A named tuple: immutable, and made on
    every login and redirect, where a frozen dataclass costs a microsecond more.)"""

    status: int
    headers: Pairs = ()
    body: str = ""
    mimetype: str = "text/html"

    @classmethod
    def redirect(cls, location: str, *, cookies: Iterable[str] = ()) -> Reply:
        """A 302 to ``location``, never cached, setting ``cookies`` (``Set-Cookie`` values)."""
        return cls(302, (("Location", location), ("Cache-Control", "no-store"),
                         *(("Set-Cookie", c) for c in cookies)))

    @classmethod
    def page(cls, body: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
             cookies: Iterable[str] = ()) -> Reply:
        return cls(status, (*(headers or {}).items(), *(("Set-Cookie", c) for c in cookies)),
                   body)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def forwarded(value: str | None, trusted: int) -> str | None:
    """The value a ``X-Forwarded-*`` header got from the outermost of ``trusted`` proxies
    (each proxy appends to the list, so that one is ``trusted`` places from the end), or
    None when the header is absent or shorter than that."""
    if not value:
        return None
    values = [v.strip() for v in value.split(",")]
    return values[-trusted] if len(values) >= trusted else None
