"""The platform's Flask application and :class:`DevPlatform`, which runs it for tests."""

from __future__ import annotations

import html
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from flask import Flask, Response, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from ..urls import LOOPBACK_HOSTS
from . import canvas_api, lti11, lti_services, registration, web
from .store import PlatformStore

log = logging.getLogger("ltikit.platform")

CANVAS_CLOUD_ISSUER = "https://canvas.instructure.com"

DEFAULTS: Mapping[str, Any] = {
    # Seconds an OAuth2 access token lives (Canvas: one hour); None: tokens never expire
    # and the token response has no expires_in, as with Canvas keys from before 2015.
    "TOKEN_LIFETIME": 3600,
    # Canvas answers token-endpoint errors on requests carrying a redirect_uri with a 302
    # to it, unless its no_redirect_on_oauth_token_method flag is on (then JSON).
    "OAUTH_TOKEN_ERRORS_AS_JSON": False,
    # Canvas keeps the refresh token on refresh, except for PKCE public clients, which get
    # a new one each time (the old one stops working): True behaves like the latter.
    "ROTATE_REFRESH_TOKENS": False,
    # Throttling: cost of one API call, the bucket's high-water mark and outflow per
    # second (Canvas: 600 and 10), and the status of a throttled call (403 before late
    # 2025, 429 since).
    "API_REQUEST_COST": 1.0,
    # Canvas charges every request an up-front cost while it runs and settles the real
    # cost when it ends (doc/api/throttling.md): many parallel calls on one token are
    # throttled even though each is cheap.
    "RATE_LIMIT_UPFRONT_COST": 50.0,
    "RATE_LIMIT_HIGH_WATER": 600.0,
    "RATE_LIMIT_OUTFLOW": 10.0,
    "RATE_LIMIT_STATUS": 429,
    # LTI platform storage (1EdTech Client Side postMessages): the course page holds a
    # frame named post_message_forwarding that keeps values per tool origin, and LTI 1.3
    # logins and launches carry lti_storage_target=post_message_forwarding, as in Canvas.
    # False: a platform without it (tools must then rely on their cookies).
    "PLATFORM_STORAGE": True,
    # "moodle": Assignment and Grade Services answer as Moodle 4.5 does where it differs
    # from Canvas: Link headers with typographic quotes and &amp; in their URLs, and a
    # score not later than the stored one (whole seconds) refused with 409, the reason in
    # the HTTP status line only.  None: Canvas's answers.
    "SERVICE_QUIRKS": None,
    # Canvas's own parts of a launch: the custom_canvas_* and ext_* parameters of 1.1, the
    # $Canvas.* variables in custom fields, the instructure.com placement claim of 1.3 and
    # product family "canvas".  False: a platform without them, as Moodle, Blackboard or
    # D2L launch a tool ($Canvas.* variables arrive as written, as Moodle sends them).
    "CANVAS_EXTENSIONS": True,
    # The LTI 1.3 issuer (``iss``).  Canvas Cloud's is https://canvas.instructure.com for
    # every school while its login, token and JWKS endpoints live on other hosts; None:
    # the platform's own URL.  DevPlatform and ``ltikit platform`` use Canvas's, so a tool
    # that derives endpoints from ``iss`` fails here as it would on Canvas.
    "LTI13_ISSUER": None,
    # Seconds after which the LTI 1.3 signing key is replaced by a new one (the previous
    # key stays published); None: only DevPlatform.rotate_lti13_key() rotates.
    "LTI13_KEY_ROTATION": None,
    # Host names the platform answers to besides localhost, 127.0.0.1 and ::1.  Any other
    # Host header is refused: a page on another site whose name was re-pointed at this
    # machine (DNS rebinding) would otherwise read its pages and CSRF tokens as any user.
    "ALLOWED_HOSTS": (),
    # Faults to inject, for testing a tool's behaviour when Canvas misbehaves:
    # {"token" | "api" | "services": {"status": 429, "retry_after": 5, "delay": 25.0,
    # "times": 3}}; DevPlatform.inject_fault() changes them while it runs.
    "FAULTS": {},
}


def create_app(data: str | Path, **config: Any) -> Flask:
    """The platform as a WSGI app keeping its state in the SQLite file ``data``."""
    path = Path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = PlatformStore(f"sqlite:///{path}")
    app = Flask("ltikit.platform", root_path=str(Path(__file__).parent))
    app.config.update(DEFAULTS)
    app.config.update(config)
    # Sessions signed with a secret kept in the data file survive restarts.
    app.config["SECRET_KEY"] = store.instance_secret
    # Like Canvas's session cookies: SameSite=None; Secure, so the OAuth2 consent page
    # works when a tool inside the course iframe sends the user there (a navigation that
    # a cross-site document starts carries no Lax cookies).  Browsers keep Secure cookies
    # on http://localhost.
    session_cookie = {"SESSION_COOKIE_NAME": "ltikit_platform_session",
                      "SESSION_COOKIE_SAMESITE": "None", "SESSION_COOKIE_SECURE": True}
    app.config.update({k: v for k, v in session_cookie.items() if k not in config})
    app.extensions["ltikit_platform"] = store
    app.extensions["ltikit_platform_consents"] = set()
    app.extensions["ltikit_platform_throttle"] = canvas_api._Throttle()
    app.extensions["ltikit_platform_stats"] = {"lock": threading.Lock(), "counts": {}}
    allowed_hosts = LOOPBACK_HOSTS | {h.lower() for h in app.config["ALLOWED_HOSTS"]}
    faults = Faults(app.config["FAULTS"])
    app.extensions["ltikit_platform_faults"] = faults

    @app.before_request
    def known_host_only() -> Response | None:
        host = _host_name(request.host)
        if host not in allowed_hosts:
            log.warning("platform: refused a request for host %.100r", request.host)
            # A bare answer: the usual error page would carry the user's CSRF token.
            return Response("This platform does not answer to that host name (allowed: "
                            + ", ".join(sorted(allowed_hosts)) + "; see ALLOWED_HOSTS).\n",
                            status=400, mimetype="text/plain")
        return None

    @app.before_request
    def injected_fault() -> Response | None:
        # REST API faults apply inside the API's throttle (canvas_api.api).
        return faults.apply(request.path, skip=("api",))

    app.register_blueprint(web.bp)
    app.register_blueprint(canvas_api.bp)
    app.register_blueprint(lti_services.bp)
    app.register_blueprint(registration.bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if request.path.startswith("/api/"):
            return {"errors": [{"message": exc.description}]}, exc.code or 500
        return render_template("platform/error.html", code=exc.code, name=exc.name,
                               description=exc.description), exc.code or 500

    return app


class Faults:
    """Injected misbehaviour, per endpoint: the OAuth2 token endpoint (``token``), the REST
    API (``api``, under /api/v1/), the LTI Advantage services (``services``), the
    Dynamic Registration endpoint (``registration``) and the platform storage frame
    (``storage``: a delay makes it load after the tool's page).  A fault
    waits ``delay`` seconds (``hang``: an hour), then answers ``status`` (with
    ``Retry-After`` when given) or, without a status, lets the request through; ``times``
    limits how many requests it affects."""

    ENDPOINTS = {"token": ("/login/oauth2/token",), "api": ("/api/v1/",),
                 "services": ("/api/lti/courses/", "/api/lti/names_and_roles"),
                 "registration": ("/api/lti/registrations",),
                 "storage": ("/post_message_forwarding",)}

    def __init__(self, initial: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, dict[str, Any]] = {}
        self.hits: dict[str, int] = {}  # requests each endpoint's fault answered
        for endpoint, fault in (initial or {}).items():
            self.inject(endpoint, **fault)

    def inject(self, endpoint: str, *, status: int | None = None, delay: float = 0.0,
               retry_after: int | None = None, times: int | None = None,
               hang: bool = False) -> None:
        if endpoint not in self.ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r} ({', '.join(self.ENDPOINTS)})")
        with self._lock:
            self._faults[endpoint] = {"status": status, "delay": 3600.0 if hang else delay,
                                      "retry_after": retry_after, "times": times}

    def clear(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def apply(self, path: str, *, endpoint: str | None = None,
              skip: tuple[str, ...] = ()) -> Response | None:
        """The fault's answer for a request to ``path`` (only ``endpoint``'s fault when
        given; none of those in ``skip``), or None to let it through."""
        with self._lock:
            for name, prefixes in self.ENDPOINTS.items():
                if name in skip or (endpoint is not None and name != endpoint):
                    continue
                fault = self._faults.get(name)
                if fault is not None and path.startswith(prefixes):
                    if fault["times"] is not None:
                        if fault["times"] <= 0:
                            return None
                        fault["times"] -= 1
                    self.hits[name] = self.hits.get(name, 0) + 1
                    break
            else:
                return None
        log.info("platform: injected fault on %s: %s", path, fault)
        if fault["delay"]:
            time.sleep(fault["delay"])
        if fault["status"] is None:
            return None
        headers = {"Retry-After": str(fault["retry_after"])} \
            if fault["retry_after"] is not None else {}
        body = json.dumps({"errors": [{"message": "injected fault"}]}) \
            if fault["status"] != 429 else "429 Too Many Requests (Rate Limit Exceeded)\n"
        return Response(body, status=fault["status"], headers=headers,
                        mimetype="application/json" if fault["status"] != 429
                        else "text/plain")


def _text(page: str) -> str:
    """The readable text of an error page, for an exception's message."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())[:500]


def _host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        log.debug("%s %s", self.command, self.path)


class DevPlatform:
    """The platform running in a background thread, for tests and scripts::

        with DevPlatform(tmp_path / "platform.sqlite3") as platform:
            tool_id = platform.add_lti11_tool("My tool", "key", "secret",
                                              url="http://127.0.0.1:5001/launch")
            print(platform.url)   # http://localhost:<free port>

    It listens on 127.0.0.1 and names itself ``localhost`` in its URLs, so a tool served
    from ``127.0.0.1`` runs on another *site*, as a real tool does inside a real LMS.  Its
    LTI 1.3 issuer is ``issuer`` (Canvas Cloud's, which is not the platform's URL; give
    each platform of one test its own).
    """

    def __init__(self, data: str | Path | None = None, *, port: int = 0,
                 host: str = "127.0.0.1", public_host: str = "localhost",
                 issuer: str | None = CANVAS_CLOUD_ISSUER, **config: Any) -> None:
        self._tmp = None
        if data is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ltikit-platform-")
            data = Path(self._tmp.name) / "platform.sqlite3"
        if public_host.lower() not in LOOPBACK_HOSTS:
            config["ALLOWED_HOSTS"] = (*config.get("ALLOWED_HOSTS", ()), public_host)
        config.setdefault("LTI13_ISSUER", issuer)
        self.app = create_app(data, **config)
        self.store: PlatformStore = self.app.extensions["ltikit_platform"]
        self._server = make_server(host, port, self.app, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://{public_host}:{self.port}"
        self.issuer: str = self.app.config["LTI13_ISSUER"] or self.url
        self._thread: threading.Thread | None = None

    def start(self) -> DevPlatform:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="ltikit-platform")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.store.engine.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> DevPlatform:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- setting up, from Python --------------------------------------------------------------
    def add_lti11_tool(self, name: str, consumer_key: str, shared_secret: str, *,
                       url: str | None = None, privacy_level: str = "public",
                       placements: Mapping[str, Mapping[str, Any]] | None = None,
                       custom_fields: Mapping[str, str] | None = None) -> int:
        """Install a tool by key, secret and launch URL (course navigation by default)."""
        return self.store.add_tool(
            name=name, consumer_key=consumer_key, shared_secret=shared_secret, url=url,
            privacy_level=privacy_level, custom_fields=custom_fields,
            placements=placements if placements is not None
            else {"course_navigation": {"enabled": "true", "text": name}})

    def add_lti11_tool_from_xml(self, consumer_key: str, shared_secret: str, *,
                                config_url: str | None = None, xml: str | None = None) -> int:
        """Install a tool from its XML configuration, as Canvas's "By URL" or "Paste XML"."""
        return web.register_tool_from_xml(self.store, consumer_key=consumer_key,
                                          shared_secret=shared_secret, xml=xml,
                                          config_url=config_url)

    def add_lti13_tool(self, name: str, *, oidc_initiation_url: str, target_link_uri: str,
                       redirect_uris: list[str] | None = None, privacy_level: str = "public",
                       custom_fields: Mapping[str, str] | None = None,
                       placements: Mapping[str, Mapping[str, Any]] | None = None,
                       public_jwk_url: str | None = None,
                       public_jwk: Mapping[str, Any] | None = None,
                       scopes: list[str] | tuple[str, ...] = ()) -> tuple[int, str, str]:
        """Install an LTI 1.3 tool: (tool id, client id, deployment id).  ``scopes``: the
        LTI Advantage scopes its developer key grants; ``public_jwk_url`` or ``public_jwk``:
        how its client assertions are checked."""
        return self.store.add_lti13_tool(
            name=name, oidc_initiation_url=oidc_initiation_url,
            target_link_uri=target_link_uri, redirect_uris=redirect_uris or (),
            privacy_level=privacy_level, custom_fields=custom_fields,
            public_jwk_url=public_jwk_url, public_jwk=public_jwk, scopes=scopes,
            placements=placements if placements is not None
            else {"course_navigation": {"enabled": "true", "text": name}})

    def add_lti13_tool_from_json(self, *, config_url: str | None = None,
                                 config: Mapping[str, Any] | None = None,
                                 name: str | None = None,
                                 redirect_uris: list[str] | None = None
                                 ) -> tuple[int, str, str]:
        """Install an LTI 1.3 tool from Canvas's developer-key JSON, fetched from
        ``config_url`` (Canvas's "Enter URL") or given (``config``, "Paste JSON"):
        (tool id, client id, deployment id).  ``redirect_uris``: what the admin types in
        the key's Redirect URIs box (default: every launch URL in the JSON)."""
        from .lti13 import tool_from_canvas_json

        if config is None:
            if not config_url:
                raise ValueError("Give config_url or config.")
            try:
                config = json.loads(web.fetch_config(config_url, accept="application/json"))
            except ValueError as exc:
                raise ValueError(f"{config_url} did not answer with JSON: {exc}") from None
        tool = tool_from_canvas_json(config, name=name)
        if redirect_uris:
            tool["redirect_uris"] = list(redirect_uris)
        return self.store.add_lti13_tool(**tool)

    def start_registration(self, registration_url: str) -> tuple[str, int]:
        """Begin an LTI Dynamic Registration as an administrator does: (the URL the
        platform opens, with ``openid_configuration`` and ``registration_token``; the
        registration's id)."""
        registration_id, token = self.store.new_registration_token(registration_url)
        return registration.with_parameters(
            registration_url,
            openid_configuration=f"{self.url}/api/lti/security/openid-configuration",
            registration_token=token), registration_id

    def register_tool(self, registration_url: str) -> tuple[int, str, str]:
        """Install a tool by LTI Dynamic Registration from its registration URL, doing
        what the administrator's browser does (open the URL, press the tool's one button):
        (tool id, client id, deployment id).  ``RuntimeError`` says what went wrong."""
        framed, registration_id = self.start_registration(registration_url)
        with requests.Session() as browser:
            page = browser.get(framed, timeout=30)
            if page.status_code != 200:
                raise RuntimeError(f"the registration page answered {page.status_code}: "
                                   f"{_text(page.text)}")
            action, fields = registration.form_of(page.text)
            done = browser.post(urljoin(page.url, action), data=fields, timeout=30)
            if done.status_code != 200:
                raise RuntimeError(f"the registration answered {done.status_code}: "
                                   f"{_text(done.text)}")
        row = self.store.registration(registration_id)
        tool = self.store.lti13_tool(tool_id=row["tool_id"]) if row and row["tool_id"] \
            else None
        if tool is None:
            raise RuntimeError("the tool answered, but did not register")
        return int(tool["tool_id"]), str(tool["client_id"]), str(tool["deployment_id"])

    def expire_service_tokens(self) -> None:
        """As if every LTI Advantage access token had reached its expiry."""
        self.store.expire_service_tokens()

    def rotate_lti13_key(self) -> str:
        """Sign LTI 1.3 launches with a new key from now on (the previous one stays in
        the JWKS); returns the new kid."""
        from .lti13 import PlatformKeys

        return PlatformKeys(self.store).rotate()

    def lti13_registration(self, client_id: str) -> dict[str, Any]:
        """What a tool registers for this platform (ltikit ``Registrations.add`` values)."""
        return {"name": "ltikit platform", "issuer": self.issuer, "client_id": client_id,
                "auth_login_url": f"{self.url}/api/lti/authorize_redirect",
                "token_url": f"{self.url}/login/oauth2/token",
                "jwks_url": f"{self.url}/api/lti/security/jwks",
                "platform_storage": bool(self.app.config["PLATFORM_STORAGE"])}

    def inject_fault(self, endpoint: str, **fault: Any) -> None:
        """Make ``endpoint`` (``"token"``, ``"api"``, ``"services"``) misbehave: see
        :class:`Faults` (``status=429, retry_after=5``; ``status=500``; ``delay=25``;
        ``hang=True``; ``times=N``)."""
        self.app.extensions["ltikit_platform_faults"].inject(endpoint, **fault)

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.app.extensions["ltikit_platform_faults"].clear(endpoint)

    def fault_hits(self, endpoint: str) -> int:
        """How many requests to ``endpoint`` an injected fault answered (or delayed)."""
        return int(self.app.extensions["ltikit_platform_faults"].hits.get(endpoint, 0))

    def add_assignment(self, course_id: int, tool_id: int, name: str,
                       points_possible: float = 10.0) -> int:
        return self.store.add_assignment(course_id, tool_id, name, points_possible)

    def add_developer_key(self, name: str, redirect_uris: list[str], *,
                          scopes: list[str] | None = None, require_scopes: bool = False
                          ) -> tuple[int, str]:
        """A Canvas API developer key: (client id, client secret)."""
        return self.store.add_developer_key(name, redirect_uris, scopes=scopes or (),
                                            require_scopes=require_scopes)

    def count(self, event: str) -> int:
        """How often something happened: ``"grant:authorization_code"``,
        ``"grant:refresh_token"``, ``"revoke"``."""
        stats = self.app.extensions["ltikit_platform_stats"]
        with stats["lock"]:
            return int(stats["counts"].get(event, 0))

    def token_seen(self, access_token: str) -> bool:
        """Whether this platform issued ``access_token`` (it keeps only hashes)."""
        return self.store.token(access_token) is not None

    def revoke_all_tokens(self) -> None:
        """As if every user removed the tool's access in their Canvas settings."""
        self.store.revoke_all()

    def expire_all_access_tokens(self) -> None:
        """Make every access token expired now (refresh tokens stay valid)."""
        self.store.expire_all()

    def user(self, login_id: str) -> dict[str, Any]:
        user = self.store.user_by_login(login_id)
        if user is None:
            raise KeyError(login_id)
        return dict(user)

    def course_id(self, course_code: str) -> int:
        for course in self.store.courses_for(None):
            if course["course_code"] == course_code:
                return int(course["id"])
        raise KeyError(course_code)


__all__ = ["DEFAULTS", "DevPlatform", "create_app", "lti11"]
