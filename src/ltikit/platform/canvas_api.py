"""Canvas's OAuth2 provider and the REST API calls tools make, in Canvas's formats.

Behaviour follows Canvas's source (``app/controllers/oauth2_provider_controller.rb``,
``lib/canvas/oauth/request_error.rb``, ``invalid_scope_error.rb``) and API docs
(``doc/api/oauth.md``, ``oauth_endpoints.md``, ``throttling.md``), including the parts a
tool must cope with: a refresh keeps the refresh token and invalidates the previous access
token at once; refresh-token errors are ``invalid_request`` "refresh_token not found"
(not ``invalid_grant``); a token-endpoint error on a request carrying a ``redirect_uri``
comes back as a 302 to it unless ``OAUTH_TOKEN_ERRORS_AS_JSON`` is set (Canvas's
``no_redirect_on_oauth_token_method`` flag); an ``invalid_scope`` redirect carries no
``state``; 401s carry ``WWW-Authenticate`` only when a new token would help.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from ..urls import origin
from .store import current_store as store

bp = Blueprint("canvas", __name__)

OOB = "urn:ietf:wg:oauth:2.0:oob"
CANVAS_REALM = 'Bearer realm="canvas-lms"'


def _config(name: str) -> Any:
    return current_app.config[name]


# -- errors in Canvas's shapes ----------------------------------------------------------------

REQUEST_ERRORS = {
    "invalid_client_id": ("invalid_client", "unknown client", 401),
    "invalid_client_secret": ("invalid_client", "invalid client", 401),
    "invalid_redirect": ("invalid_request", "redirect_uri does not match client settings", 400),
    "invalid_refresh_token": ("invalid_request", "refresh_token not found", 400),
    "invalid_authorization_code": ("invalid_grant", "authorization_code not found", 400),
    "incorrect_client": ("invalid_grant", "incorrect client", 400),
    "authorization_code_not_supplied": (
        "invalid_request", "You must provide the code parameter when using the "
        "authorization_code grant type", 400),
    "refresh_token_not_supplied": (
        "invalid_request", "You must provide the refresh_token parameter when using the "
        "refresh_token grant type", 400),
    "unsupported_grant_type": (
        "unsupported_grant_type", "The grant_type you requested is not currently supported",
        400),
}


class OAuthError(Exception):
    def __init__(self, name: str, description: str | None = None) -> None:
        error, default, status = REQUEST_ERRORS.get(name, (name, description or name, 400))
        self.error, self.description, self.status = error, description or default, status


def _json_error(exc: OAuthError) -> Response:
    response = jsonify(error=exc.error, error_description=exc.description)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Canvas OAuth 2.0"
    return response


def _with_query(url: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redirect_ok(key: dict[str, Any], redirect_uri: str) -> bool:
    """Canvas: the redirect URI's host must equal or be a subdomain of a registered one's."""
    if redirect_uri == OOB:
        return True
    # Read as the browser will read it: a URL whose readers could disagree about its host
    # (``http://evil.example\\@tool/cb``) has no origin, and is refused.
    target = origin(redirect_uri)
    if target is None:
        return False
    for registered in key["redirect_uris"]:
        allowed = origin(registered)
        if allowed is None:
            continue
        same_host = target.host == allowed.host or target.host.endswith("." + allowed.host)
        explicit_port = urlsplit(registered).port is not None
        if same_host and (not explicit_port or allowed.port == target.port):
            return True
    return False


def _key_from(client_id: str | None) -> dict[str, Any] | None:
    if not client_id or not client_id.isdigit():
        return None
    key = store().developer_key(int(client_id))
    return key if key and key["workflow_state"] == "active" else None


# -- GET /login/oauth2/auth ---------------------------------------------------------------------

@bp.get("/login/oauth2/auth")
def authorize() -> ResponseReturnValue:
    args = request.args
    redirect_uri = args.get("redirect_uri", "")
    key = _key_from(args.get("client_id"))
    if key is None:
        return _json_error(OAuthError("invalid_client_id"))
    if not _redirect_ok(key, redirect_uri):
        return _json_error(OAuthError("invalid_redirect"))
    state = args.get("state")
    scopes = (args.get("scope") or args.get("scopes") or "").split()
    if key["require_scopes"]:
        # Canvas::OAuth::Provider#valid_scopes?: a scoped key needs scopes, all its own.
        missing = [s for s in scopes if s not in key["scopes"]]
        if missing or not scopes:
            # Raised before the state is kept: Canvas's invalid_scope redirect has no state.
            return redirect(_with_query(redirect_uri, [
                ("error", "invalid_scope"),
                ("error_description", "A requested scope is invalid, unknown, malformed, or "
                 "exceeds the scope granted by the resource owner. The following scopes were "
                 "requested, but not granted: " + _sentence(missing))]))

    def final(params: list[tuple[str, str]]) -> ResponseReturnValue:
        if state is not None:
            params.append(("state", state))
        return redirect(_with_query(redirect_uri, params))

    if args.get("response_type") != "code":
        return final([("error", "unsupported_response_type"),
                      ("error_description", "Only response_type=code is permitted")])
    code_challenge = args.get("code_challenge")
    if code_challenge and args.get("code_challenge_method", "S256") != "S256":
        return final([("error", "invalid_request"),
                      ("error_description", "Only S256 code challenges are supported")])
    request_data = {"key_id": key["id"], "redirect_uri": redirect_uri, "scopes": scopes,
                    "state": state, "code_challenge": code_challenge,
                    "purpose": args.get("purpose")}
    prompt = args.get("prompt")
    if prompt == "none":
        if g.get("user") is None:
            return final([("error", "login_required"),
                          ("error_description", "prompt=none but there is no current session")])
        if not _remembered(key["id"], g.user["id"]):
            return final([("error", "interaction_required"),
                          ("error_description", "prompt=none but a token cannot be granted "
                           "without user interaction")])
        return redirect(_issue_code(request_data, g.user["id"]))
    if prompt is not None:
        return final([("error", "unsupported_prompt_type"),
                      ("error_description", 'prompt must be "none" (or omitted)')])
    session["oauth2"] = request_data
    return redirect(url_for("canvas.confirm"))


def _sentence(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def _remembered(key_id: int, user_id: int) -> bool:
    return (key_id, user_id) in current_app.extensions["ltikit_platform_consents"]


def _issue_code(data: dict[str, Any], user_id: int) -> str:
    code = secrets.token_hex(32)
    store().save_code(code, key_id=data["key_id"], user_id=user_id,
                      redirect_uri=data["redirect_uri"], scopes=data["scopes"],
                      code_challenge=data.get("code_challenge"))
    params = [("code", code)]
    if data.get("state") is not None:
        params.append(("state", data["state"]))
    if data["redirect_uri"] == OOB:
        return url_for("canvas.authorize", **dict[str, Any](params))
    return _with_query(data["redirect_uri"], params)


@bp.get("/login/oauth2/confirm")
def confirm() -> ResponseReturnValue:
    data = session.get("oauth2")
    if not data:
        abort(400, "Must submit new OAuth2 request")
    key = store().developer_key(data["key_id"])
    return render_template("platform/confirm.html", key=key, data=data)


def _take_consent_request() -> dict[str, Any]:
    """The authorization the consent page was showing, once (Canvas: session[:oauth2])."""
    data = session.pop("oauth2", None)
    if not data:
        abort(Response("Invalid or missing session for oauth", status=400,
                       mimetype="text/plain"))
    _check_form_token()
    return dict(data)


@bp.post("/login/oauth2/accept")
def accept() -> ResponseReturnValue:
    data = _take_consent_request()
    if request.form.get("remember_access"):
        current_app.extensions["ltikit_platform_consents"].add((data["key_id"], g.user["id"]))
    return redirect(_issue_code(data, g.user["id"]))


@bp.post("/login/oauth2/deny")
def deny() -> ResponseReturnValue:
    data = _take_consent_request()
    params = [("error", "access_denied")]
    if data.get("state") is not None:
        params.append(("state", data["state"]))
    return redirect(_with_query(data["redirect_uri"], params))


def _check_form_token() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
        abort(400, "The form expired; go back and try again.")


# -- POST/DELETE /login/oauth2/token ---------------------------------------------------------

@bp.post("/login/oauth2/token")
def token() -> ResponseReturnValue:
    form = request.form
    try:
        return _grant(form)
    except OAuthError as exc:
        redirect_uri = form.get("redirect_uri") or ""
        if _config("OAUTH_TOKEN_ERRORS_AS_JSON") or not redirect_uri or redirect_uri == OOB:
            return _json_error(exc)
        # Canvas's "old silly behavior": the error goes to the redirect_uri as a 302.
        return redirect(_with_query(redirect_uri, [("error", exc.error),
                                                   ("error_description", exc.description)]))


def _client(form: Mapping[str, str]) -> dict[str, Any]:
    client_id, secret = form.get("client_id"), form.get("client_secret")
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        client_id, secret = client_id or auth.username, secret or auth.password
    key = _key_from(client_id)
    if key is None:
        raise OAuthError("invalid_client_id")
    if not secret or not hmac.compare_digest(secret.encode(), key["secret"].encode()):
        raise OAuthError("invalid_client_secret")
    return key


def _grant(form: Mapping[str, str]) -> Response:
    grant_type = form.get("grant_type") or ("authorization_code" if form.get("code") else "")
    if grant_type == "client_credentials":  # LTI Advantage services (a tool, not a user)
        from .lti_services import client_credentials

        return client_credentials(form, token_url=request.base_url)
    if grant_type not in ("authorization_code", "refresh_token"):
        raise OAuthError("unsupported_grant_type")
    key = _client(form)
    lifetime = _config("TOKEN_LIFETIME")
    _count(f"grant:{grant_type}")
    if grant_type == "authorization_code":
        code = form.get("code")
        if not code:
            raise OAuthError("authorization_code_not_supplied")
        if not _redirect_ok(key, form.get("redirect_uri", "")):
            raise OAuthError("invalid_redirect")
        grant = store().take_code(code)
        if grant is None:
            raise OAuthError("invalid_authorization_code")
        if grant["key_id"] != key["id"]:
            raise OAuthError("incorrect_client")
        if grant["code_challenge"]:
            verifier = form.get("code_verifier") or ""
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
                .rstrip(b"=").decode()
            if not hmac.compare_digest(digest, grant["code_challenge"]):
                raise OAuthError("invalid_grant", "invalid code_verifier")
        access, issued, _ = store().issue_token(key_id=key["id"], user_id=grant["user_id"],
                                                scopes=grant["scopes"], lifetime=lifetime)
        return _token_json(access, grant["user_id"], lifetime, refresh=issued)
    refresh = form.get("refresh_token")
    if not refresh:
        raise OAuthError("refresh_token_not_supplied")
    result = store().refresh_token(refresh, key["id"], lifetime,
                                   rotate=_config("ROTATE_REFRESH_TOKENS"))
    if result == "not_found":
        raise OAuthError("invalid_refresh_token")
    if isinstance(result, str):  # "incorrect_client"
        raise OAuthError(result)
    access, new_refresh, row = result
    # Normally no refresh_token in the answer: the one the tool holds stays valid.
    return _token_json(access, row["user_id"], lifetime, refresh=new_refresh)


def _count(name: str) -> None:
    stats = current_app.extensions["ltikit_platform_stats"]
    with stats["lock"]:
        stats["counts"][name] = stats["counts"].get(name, 0) + 1


def _token_json(access: str, user_id: int, lifetime: float | None, *,
                refresh: str | None = None) -> Response:
    user = store().user(user_id)
    if user is None:  # pragma: no cover - users are never deleted
        abort(400)
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "user": {"id": user["id"], "name": user["name"],
                 "global_id": str(user["id"]), "effective_locale": user.get("locale") or "en"},
        "canvas_region": "unknown",
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    if lifetime:
        body["expires_in"] = int(lifetime)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/login/oauth2/token")
def revoke() -> ResponseReturnValue:
    token_row = _bearer_token()
    if token_row is None:
        response = jsonify(message="can't delete OAuth access token when not using an OAuth "
                                   "access token")
        response.status_code = 400
        return response
    store().revoke_token(token_row["id"])
    _count("revoke")
    return jsonify({})


def _bearer_token() -> dict[str, Any] | None:
    header = request.headers.get("Authorization", "")
    value = header[7:].strip() if header[:7].lower() == "bearer " else \
        request.args.get("access_token")
    if not value:
        return None
    row = store().token(value)
    if row is None or row["revoked"] or (row["expires_at"] and row["expires_at"] < store().clock()):
        return None
    return row


@bp.get("/_platform/stats")
def stats() -> ResponseReturnValue:
    """Counts of OAuth2 events (grants, revocations), for tests running the platform in
    another process."""
    data = current_app.extensions["ltikit_platform_stats"]
    with data["lock"]:
        return jsonify(dict(data["counts"]))


# -- the REST API ---------------------------------------------------------------------------

KNOWN_SCOPES: list[str] = []
"""The ``url:GET|...`` scope of every API endpoint this platform answers."""


def _api_errors(status: int, message: str, *, www_authenticate: bool = False,
                kind: str | None = None) -> Response:
    body: dict[str, Any] = {"errors": [{"message": message}]}
    if kind:
        body = {"status": kind, **body}
    response = jsonify(body)
    response.status_code = status
    if www_authenticate:
        response.headers["WWW-Authenticate"] = CANVAS_REALM
    return response


class _Throttle:
    """Canvas's leaky bucket per access token (high-water mark 600, outflow 10 per second,
    doc/api/throttling.md): a request takes an up-front cost from the bucket when it
    starts, and when it ends that is given back and its real cost taken."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, token_id: int, now: float, outflow: float) -> float:
        level, at = self._buckets.get(token_id, (0.0, now))
        return max(0.0, level - (now - at) * outflow)

    def start(self, token_id: int, upfront: float, high_water: float, outflow: float
              ) -> bool:
        """Take the up-front cost; False (nothing taken) when the bucket would overflow."""
        now = time.monotonic()
        with self._lock:
            level = self._level(token_id, now, outflow)
            if level + upfront > high_water:
                self._buckets[token_id] = (level, now)
                return False
            self._buckets[token_id] = (level + upfront, now)
            return True

    def finish(self, token_id: int, upfront: float, cost: float, high_water: float,
               outflow: float) -> float:
        """Settle a request that started: the remaining capacity."""
        now = time.monotonic()
        with self._lock:
            level = max(0.0, self._level(token_id, now, outflow) - upfront + cost)
            self._buckets[token_id] = (level, now)
            return high_water - level


_View = Callable[..., Response]


def api(route_pattern: str) -> Callable[[_View], _View]:
    """Register a GET API endpoint with Canvas's scope name for it (``url:GET|...``)."""
    scope = f"url:GET|{route_pattern}"
    KNOWN_SCOPES.append(scope)
    flask_rule = re.sub(r":(\w+)", r"<\1>", route_pattern)

    def decorator(view: _View) -> _View:
        def wrapper(**kwargs: Any) -> Response:
            token_row = None
            header = request.headers.get("Authorization", "")
            if header[:7].lower() == "bearer " or request.args.get("access_token"):
                token_row = _bearer_token()
                if token_row is None:
                    return _api_errors(401, "Invalid access token.", www_authenticate=True)
            else:
                return _api_errors(401, "user authorization required", www_authenticate=True,
                                   kind="unauthenticated")
            key = store().developer_key(token_row["key_id"])
            if key and key["require_scopes"] and scope not in token_row["scopes"]:
                return _api_errors(401, "Insufficient scopes on access token.")
            throttle = current_app.extensions["ltikit_platform_throttle"]
            upfront, cost = _config("RATE_LIMIT_UPFRONT_COST"), _config("API_REQUEST_COST")
            high_water, outflow = _config("RATE_LIMIT_HIGH_WATER"), _config("RATE_LIMIT_OUTFLOW")
            if not throttle.start(token_row["id"], upfront, high_water, outflow):
                status = _config("RATE_LIMIT_STATUS")
                response = Response("403 Forbidden (Rate Limit Exceeded)\n" if status == 403
                                    else "429 Too Many Requests (Rate Limit Exceeded)\n",
                                    status=status, mimetype="text/plain")
                response.headers["X-Rate-Limit-Remaining"] = "0.0"
                return response
            try:
                # An injected "api" fault runs here, holding the up-front cost as a slow
                # Canvas request does.
                injected = current_app.extensions["ltikit_platform_faults"].apply(
                    request.path, endpoint="api")
                g.api_user = store().user(token_row["user_id"])
                g.api_key = key
                response = injected or view(**kwargs)
            finally:
                remaining = throttle.finish(token_row["id"], upfront, cost, high_water,
                                            outflow)
            response.headers["X-Request-Cost"] = repr(float(cost))
            response.headers["X-Rate-Limit-Remaining"] = repr(round(remaining, 3))
            return response

        functools.update_wrapper(wrapper, view)
        bp.add_url_rule(f"/api/v1{flask_rule.removeprefix('/api/v1')}", view_func=wrapper,
                        methods=["GET", "HEAD"])
        return wrapper

    return decorator


def _not_found() -> Response:
    return _api_errors(404, "The specified resource does not exist.")


def _not_authorized() -> Response:
    return _api_errors(401, "user not authorized to perform that action", kind="unauthorized")


def _user_json(user: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    data = {"id": user["id"], "name": user["name"], "created_at": "2026-08-01T12:00:00-06:00",
            "sortable_name": user["sortable_name"], "short_name": user["short_name"],
            "sis_user_id": user["sis_user_id"], "integration_id": None,
            "login_id": user["login_id"]}
    if detail:
        data.update(first_name=user["given_name"], last_name=user["family_name"],
                    avatar_url=f"{request.host_url}images/thumbnails/{user['id']}.png",
                    locale=user["locale"], effective_locale=user["locale"] or "en",
                    permissions={"can_update_name": True, "can_update_avatar": True,
                                 "limit_parent_app_web_access": False})
    return data


def _enrollment_json(enrollment: dict[str, Any]) -> dict[str, Any]:
    kind = enrollment["type"].removesuffix("Enrollment").lower()
    return {"type": kind, "role": enrollment["type"], "role_id": 0,
            "user_id": enrollment["user_id"], "enrollment_state": enrollment["state"],
            "limit_privileges_to_course_section": False}


def _course_json(course: Mapping[str, Any], enrollments: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    data = {"id": course["id"], "name": course["name"], "account_id": course["account_id"],
            "uuid": course["uuid"], "start_at": course["start_at"], "end_at": None,
            "grading_standard_id": None, "is_public": False,
            "created_at": "2026-08-01T12:00:00-06:00", "course_code": course["course_code"],
            "default_view": "modules", "root_account_id": course["account_id"],
            "enrollment_term_id": 1, "license": "private", "grade_passback_setting": None,
            "public_syllabus": False, "public_syllabus_to_auth": False,
            "storage_quota_mb": 500, "is_public_to_auth_users": False,
            "homeroom_course": False, "course_color": None, "friendly_name": None,
            "apply_assignment_group_weights": False, "calendar": {
                "ics": f"{request.host_url}feeds/calendars/course_{course['uuid']}.ics"},
            "time_zone": course["time_zone"], "blueprint": False, "template": False,
            "sis_course_id": course["sis_course_id"], "integration_id": None,
            "hide_final_grades": False, "workflow_state": course["workflow_state"],
            "restrict_enrollments_to_course_dates": False}
    if enrollments is not None:
        data["enrollments"] = [_enrollment_json(e) for e in enrollments]
    return data


def _user_enrollments(course_id: int, user_id: int) -> list[dict[str, Any]]:
    return [{"type": t, "user_id": user_id, "state": "active"}
            for t in store().enrollment_types(course_id, user_id)]


def _last_arg(name: str, default: Any) -> Any:
    # Rails keeps the last of repeated plain parameters (canvasapi sends per_page twice).
    values = request.args.getlist(name)
    return values[-1] if values else default


def _page_args(default: int = 10, maximum: int = 100,
               size: str = "per_page") -> tuple[int, int]:
    """(page, page size) from the request (``size``: a parameter that overrides
    ``per_page``, as the LTI services' ``limit`` does); ``page`` may be a marker."""
    try:
        per_page = int(_last_arg(size, _last_arg("per_page", default)))
    except ValueError:
        per_page = default
    page = read_page_marker(str(_last_arg("page", "1"))) or 1
    return max(1, page), min(max(1, per_page), maximum)


PAGE_MARKER_PREFIX = "bookmark:"

EXCLUDE_IN_PAGINATION_LINKS = ("page", "per_page", "access_token", "api_key")
"""Query parameters Canvas leaves out of ``Link`` URLs (``Api.build_links_hash`` in
lib/api.rb): a tool authenticating with ``?access_token=`` loses it from page 2 on."""


def page_links(total: int, page: int, per_page: int, *, drop: tuple[str, ...] = (),
               last: bool = True, bookmarks: bool = False) -> str:
    """Canvas's ``Link`` header for this request, as lib/api.rb builds it: the other
    query parameters first (sorted, as Rails's ``to_query``), then ``page=…&per_page=…``.
    ``last`` False: no ``rel="last"`` (Canvas leaves it out where counting is costly);
    ``bookmarks``: opaque page markers instead of numbers, as Canvas's bookmarked
    collections send.  Tools must follow the URLs, never build them."""
    base = request.base_url
    skip = {*EXCLUDE_IN_PAGINATION_LINKS, *drop}
    others = sorted(((k, v) for k, v in request.args.items(multi=True) if k not in skip),
                    key=lambda kv: kv[0])
    prefix = f"{base}?{urlencode(others)}&" if others else f"{base}?"

    def link(number: int, rel: str) -> str:
        marker = page_marker(number) if bookmarks else str(number)
        return f'<{prefix}{urlencode([("page", marker), ("per_page", per_page)])}>; rel="{rel}"'

    final = max(1, -(-total // per_page))
    links = [link(page, "current")]
    if page < final:
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(page - 1, "prev"))
    links.append(link(1, "first"))
    if last:
        links.append(link(final, "last"))
    return ",".join(links)


def page_marker(number: int) -> str:
    """An opaque page marker for page ``number`` (``bookmark:`` and base64 JSON)."""
    return PAGE_MARKER_PREFIX + base64.urlsafe_b64encode(
        json.dumps([number]).encode()).decode().rstrip("=")


def read_page_marker(value: str) -> int | None:
    """The page a marker or a plain number names; None for anything else."""
    if value.isdigit():
        return int(value)
    if not value.startswith(PAGE_MARKER_PREFIX):
        return None
    raw = value[len(PAGE_MARKER_PREFIX):]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError):
        return None
    if isinstance(decoded, list) and len(decoded) == 1 and isinstance(decoded[0], int):
        return decoded[0]
    return None


def _paginated(items: list[Any], total: int, page: int, per_page: int) -> Response:
    """A JSON list with Canvas's ``Link`` header."""
    response = jsonify(items)
    response.headers["Link"] = page_links(total, page, per_page)
    return response


def _user_for_api(user_id: str) -> dict[str, Any] | Response:
    """``self`` or a user id, as Canvas reads it: yourself, or anyone for an admin."""
    user = g.api_user if user_id == "self" else \
        (store().user(int(user_id)) if user_id.isdigit() else None)
    if user is None:
        return _not_found()
    if user["id"] != g.api_user["id"] and not g.api_user["account_admin"]:
        return _not_authorized()
    return dict(user)


@api("/api/v1/users/:id")
def user_show(id: str) -> Response:
    user = _user_for_api(id)
    if isinstance(user, Response):
        return user
    return jsonify(_user_json(user, detail=True))


@api("/api/v1/users/:user_id/profile")
def user_profile(user_id: str) -> Response:
    user = _user_for_api(user_id)
    if isinstance(user, Response):
        return user
    return jsonify({
        "id": user["id"], "name": user["name"], "short_name": user["short_name"],
        "sortable_name": user["sortable_name"], "title": user["title"], "bio": user["bio"],
        "pronunciation": None, "primary_email": user["email"], "login_id": user["login_id"],
        "sis_user_id": user["sis_user_id"], "integration_id": None,
        "lti_user_id": user["lti_context_id"],  # the 1.1 id, as Canvas's profile shows it
        "avatar_url": f"{request.host_url}images/thumbnails/{user['id']}.png",
        "calendar": {"ics": f"{request.host_url}feeds/calendars/user_{user['lti_id']}.ics"},
        "time_zone": user["time_zone"], "locale": user["locale"],
        "effective_locale": user["locale"] or "en", "k5_user": False,
        "use_classic_font_in_k5": False})


@api("/api/v1/courses")
def courses_index() -> Response:
    page, per_page = _page_args()
    courses = store().courses_for(g.api_user["id"])
    chunk = courses[(page - 1) * per_page: page * per_page]
    return _paginated([_course_json(c, _user_enrollments(c["id"], g.api_user["id"]))
                       for c in chunk], len(courses), page, per_page)


def _course_for_api(course_id: str) -> dict[str, Any] | Response:
    course = store().course(int(course_id)) if course_id.isdigit() else None
    if course is None:
        return _not_found()
    if not store().enrollment_types(course["id"], g.api_user["id"]) and \
            not g.api_user["account_admin"]:
        return _not_authorized()
    return dict(course)


@api("/api/v1/courses/:id")
def course_show(id: str) -> Response:
    course = _course_for_api(id)
    if isinstance(course, Response):
        return course
    return jsonify(_course_json(course, _user_enrollments(course["id"], g.api_user["id"])))


_ENROLLMENT_TYPES = {"teacher": "TeacherEnrollment", "student": "StudentEnrollment",
                     "ta": "TaEnrollment", "observer": "ObserverEnrollment",
                     "designer": "DesignerEnrollment"}


@api("/api/v1/courses/:course_id/search_users")
def course_search_users(course_id: str) -> Response:
    """Canvas's alias of the course users list (what canvasapi's ``get_users`` calls)."""
    return _course_users(course_id)


@api("/api/v1/courses/:course_id/users")
def course_users(course_id: str) -> Response:
    return _course_users(course_id)


def _course_users(course_id: str) -> Response:
    course = _course_for_api(course_id)
    if isinstance(course, Response):
        return course
    page, per_page = _page_args()
    types = [_ENROLLMENT_TYPES[t] for t in request.args.getlist("enrollment_type[]") +
             request.args.getlist("enrollment_type") if t in _ENROLLMENT_TYPES]
    includes = set(request.args.getlist("include[]"))
    if g.api_key and g.api_key["require_scopes"] and not g.api_key["allow_includes"]:
        includes = set()  # Canvas strips include[] for scoped keys that do not allow them
    total, rows = store().course_users(course["id"], types=types, offset=(page - 1) * per_page,
                                       limit=per_page)
    items = []
    for row in rows:
        item = _user_json(row)
        if "email" in includes:
            item["email"] = row["email"]
        if "enrollments" in includes:
            item["enrollments"] = [_enrollment_json(e) for e in row["enrollments"]]
        items.append(item)
    return _paginated(items, total, page, per_page)
