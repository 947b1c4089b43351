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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

__all__ = ["Headers", "Reply", "Request"]

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


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request, already parsed: immutable, framework-free."""

    method: str
    url: str
    """The public URL without its query (scheme, host, path), as the client sent it."""
    path: str = "/"
    """The path under the app (for log lines and local redirects)."""
    query: Pairs = ()
    form: Pairs = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.method.isupper():
            object.__setattr__(self, "method", self.method.upper())
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))
        if isinstance(self.cookies, dict):  # a read-only view (an adapter's) is kept as is
            object.__setattr__(self, "cookies", MappingProxyType(dict(self.cookies)))

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive), or None."""
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        """The first query parameter ``name``, or None."""
        return next((v for k, v in self.query if k == name), None)

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


@dataclass(frozen=True)
class Reply:
    """What a flow answers: a status, headers (``Set-Cookie`` lines among them) and an
    HTML body, for the adapter to send as it is."""

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
