"""The ``Set-Cookie`` values of ltikit's own cookies (launch id, login state, cookie check).

Inside a platform's iframe a tool's cookies are third-party: they must be
``SameSite=None; Secure`` to be sent at all, and ``Partitioned`` (CHIPS) to survive the
third-party cookie phase-out.  Written out by hand rather than through a framework's
``set_cookie``, which re-validates and re-quotes every attribute on each launch: ltikit's
names and values (launch ids, state digests) are URL-safe and need no quoting.  Max-Age
without Expires: every browser that can run an LTI tool honours it.
"""

from __future__ import annotations

__all__ = ["CookiePolicy"]


class CookiePolicy:
    """How ltikit's cookies are set: ``secure`` (``SameSite=None; Secure``, else ``Lax``
    for plain-http hosts other than localhost) and ``partitioned``."""

    def __init__(self, *, secure: bool = True, partitioned: bool = True) -> None:
        self.secure, self.partitioned = secure, partitioned
        self._attributes: dict[tuple[int, bool], str] = {}

    def header(self, name: str, value: str, max_age: int, *, http_only: bool = True) -> str:
        """A ``Set-Cookie`` value (``max_age`` 0 deletes the cookie; ``http_only`` False
        only for the cookie check, which scripts must read)."""
        attributes = self._attributes.get((max_age, http_only))
        if attributes is None:
            attributes = f"; Max-Age={max_age}{'; HttpOnly' if http_only else ''}; Path=/"
            if self.secure:
                attributes += "; Secure; SameSite=None"
                if self.partitioned:
                    attributes += "; Partitioned"
            else:
                attributes += "; SameSite=Lax"
            if len(self._attributes) < 16:
                self._attributes[(max_age, http_only)] = attributes
        return f"{name}={value}{attributes}"

    def deletion(self, name: str) -> str:
        return self.header(name, "", 0)
