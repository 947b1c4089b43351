"""Drive the local platform (:class:`ltikit.platform.DevPlatform`) from tests without a
browser: a ``requests`` session that acts like one where it matters.

Browsers treat ``http://localhost`` and ``http://127.0.0.1`` as secure contexts, so
``Secure`` cookies (the platform's session, like Canvas's, is ``SameSite=None; Secure``)
are kept and sent there; ``requests`` would drop them.  :func:`browser_session` fixes
that, and :class:`PlatformUser` clicks through the platform's pages::

    user = PlatformUser(platform, "teacher")
    page = user.launch(tool_id, course_id)        # the tool's answer to the launch
    page = user.authorize()                       # accept the consent page, if shown
"""

from __future__ import annotations

import html
import re
import urllib.request
from http.cookiejar import Cookie, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

if TYPE_CHECKING:
    from ..platform import DevPlatform

_LOCAL = ("localhost", "127.0.0.1", "[::1]")


def _search(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        raise AssertionError(f"the platform's page has no match for {pattern!r}")
    return found.group(1)


class _LocalhostIsSecure(DefaultCookiePolicy):
    def return_ok_secure(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        if urlsplit(request.get_full_url()).hostname in _LOCAL:
            return True
        return super().return_ok_secure(cookie, request)


class _BrowserSession(requests.Session):
    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        # requests copies the session's cookies into a fresh jar with the default policy;
        # give that jar (which redirects reuse) our policy and redo the Cookie header.
        prepared = super().prepare_request(request)
        prepared._cookies.set_policy(self.cookies.get_policy())  # type: ignore[attr-defined]
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(prepared._cookies)  # type: ignore[attr-defined]
        return prepared


def browser_session() -> requests.Session:
    """A ``requests.Session`` that keeps ``Secure`` cookies on localhost, as browsers do."""
    session = _BrowserSession()
    session.cookies.set_policy(_LocalhostIsSecure())
    return session


class PlatformUser:
    """One user of the local platform, with their own cookies."""

    def __init__(self, platform: DevPlatform, login: str) -> None:
        self.platform = platform
        self.session = browser_session()
        home = self.session.get(platform.url + "/", timeout=30)
        self.csrf = _search(r'name="csrf_token" value="([^"]+)"', home.text)
        self.user = platform.user(login)
        self.session.post(platform.url + "/switch_user", timeout=30,
                          data={"csrf_token": self.csrf, "user_id": self.user["id"]})

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.platform.url + path, timeout=30, **kwargs)

    def launch_form(self, path: str) -> tuple[str, list[tuple[str, str]]]:
        """The URL and signed fields of the self-submitting launch form at ``path``."""
        page = self.get(path)
        page.raise_for_status()
        return self.form_of(page)

    @staticmethod
    def form_of(page: requests.Response) -> tuple[str, list[tuple[str, str]]]:
        """The URL and fields of a self-submitting form of the platform."""
        action = _search(r'action="([^"]+)"', page.text)
        fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        return html.unescape(action), [(html.unescape(k), html.unescape(v)) for k, v in fields]

    def launch(self, tool_id: int, course_id: int, placement: str = "course_navigation",
               **query: str) -> requests.Response:
        """Launch a tool as this user (following its redirects, as the iframe would)."""
        params = "&".join(f"{k}={v}" for k, v in {"placement": placement, **query}.items())
        url, fields = self.launch_form(
            f"/courses/{course_id}/external_tools/{tool_id}/launch?{params}")
        return self.session.post(url, data=fields, timeout=30)

    def launch13(self, tool_id: int, course_id: int, placement: str = "course_navigation",
                 **query: str) -> requests.Response:
        """An LTI 1.3 launch as the iframe makes it: the login initiation, the tool's
        redirect to the platform's auth endpoint, then the platform's self-submitting
        id_token form (for a platform started with ``PLATFORM_STORAGE=False``: the login
        then answers with a redirect, not a page that needs scripts)."""
        answer = self.launch(tool_id, course_id, placement, **query)
        answer.raise_for_status()
        url, fields = self.form_of(answer)
        return self.session.post(url, data=fields, timeout=30)

    def authorize(self, *, remember: bool = False) -> requests.Response:
        """Click *Authorize* on the OAuth2 consent page (after a redirect to it)."""
        data = {"csrf_token": self.csrf}
        if remember:
            data["remember_access"] = "1"
        return self.session.post(self.platform.url + "/login/oauth2/accept", data=data,
                                 timeout=30)

    def deny(self) -> requests.Response:
        return self.session.post(self.platform.url + "/login/oauth2/deny", timeout=30,
                                 data={"csrf_token": self.csrf})
