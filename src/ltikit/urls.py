"""Origins of URLs that come from outside, read the way browsers and HTTP clients read them.

A URL from a launch, a login or a ``Link`` header decides where a browser goes or where
an access token is sent, so two readers must not disagree about its host.  They do on
some inputs: ``http://evil.example\\@tool/launch`` is host ``tool`` to Python's
``urlsplit`` but ``evil.example`` to browsers (the WHATWG URL standard treats ``\\`` as
``/`` in http(s) URLs) and to urllib3, which ``requests`` sends with; ``http://t%6fol/``
is ``t%6fol`` to one and ``tool`` to the others.  Here such URLs have no origin at all:

* anything but an absolute ``http``/``https`` URL is refused;
* whitespace and control characters anywhere, and ``\\``, ``@`` (user info), ``%`` or
  non-ASCII characters in the authority, are refused (a genuine LTI URL has none of them:
  hosts are sent in their ASCII form);
* what is left is read by ``urlsplit`` *and* by urllib3's ``parse_url``; the two must agree
  on scheme, host and port, or the URL is refused.

Origins compare scheme, host (lower case) and port, with the scheme's default port filled
in, as the browser's same-origin rule does.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

__all__ = ["Origin", "is_loopback", "origin", "same_origin", "secure_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# ASCII whitespace and C0 controls (browsers strip or drop them silently), and DEL.
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_AUTHORITY_END = re.compile(r"[/?#]")
_BAD_IN_AUTHORITY = re.compile(r"[\\@%]|[^\x00-\x7f]")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}"


def origin(url: object) -> Origin | None:
    """The origin of an absolute http(s) ``url``, or ``None`` when it has none or when
    readers could disagree about it (see the module's docstring)."""
    if not isinstance(url, str) or len(url) > 8192:
        return None
    return _origin(url)


# Reading a URL twice costs about 19 µs; a tool sees few distinct launch and service URLs
# (its own, its platforms'), so answers are kept.  Made-up URLs only churn the cache.
@functools.lru_cache(maxsize=1024)
def _origin(url: str) -> Origin | None:
    if _CONTROL.search(url):
        return None
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _DEFAULT_PORTS:
        return None
    authority = _AUTHORITY_END.split(rest, 1)[0]
    if not authority or _BAD_IN_AUTHORITY.search(authority):
        return None
    try:
        ours = urlsplit(url)
        host, port = ours.hostname, ours.port
        theirs = parse_url(url)
    except (ValueError, LocationParseError):
        return None
    if not host:
        return None
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    their_host = (theirs.host or "").lower().strip("[]")
    their_port = theirs.port if theirs.port is not None else _DEFAULT_PORTS[scheme]
    if (theirs.scheme or "").lower() != scheme or their_host != host or their_port != port:
        return None
    if not 0 < port < 65536:
        return None
    return Origin(scheme, host, port)


def same_origin(url: object, other: object) -> bool:
    """Whether two URLs have one origin (``False`` when either has none)."""
    a = origin(url)
    return a is not None and a == origin(other)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.1`` or ``::1``)."""
    return host.lower().strip("[]") in LOOPBACK_HOSTS


def secure_origin(url: object) -> Origin | None:
    """The origin of ``url`` if it may carry secrets: https, or plain http to this machine
    only (development); ``None`` otherwise."""
    found = origin(url)
    if found is None or (found.scheme != "https" and not is_loopback(found.host)):
        return None
    return found
