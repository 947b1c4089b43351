"""LTI Dynamic Registration, the platform's side, the way Canvas does it.

Canvas's guide ("Registering an LTI Tool", doc/api/registration.md): an administrator
enters the tool's registration URL; Canvas opens it in an iframe with
``openid_configuration`` and ``registration_token``; the tool GETs the configuration (the
token as a Bearer token), POSTs its registration to ``registration_endpoint`` (the same
token), gets a ``client_id``, and posts ``{subject: "org.imsglobal.lti.close"}`` to the
parent window, which then shows the new tool.

* ``POST /tools/registrations`` (the Tools page's form) starts one: a token valid an hour,
  and the page that frames the tool's URL and waits for its close message;
* ``GET /api/lti/security/openid-configuration`` answers the configuration: Canvas's
  issuer and endpoint paths, the placements per message type, the scopes;
* ``POST /api/lti/registrations`` checks the token (unexpired, unused) and the
  registration (Canvas answers 422 with ``errors`` when it is incomplete), installs the
  tool with its placements, scopes and privacy level, and answers the registration with
  its ``client_id`` and, in the tool configuration, the ``deployment_id``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from . import lti11
from .lti_services import SERVICE_SCOPES
from .store import current_store as store
from .web import issuer, platform_url

bp = Blueprint("registration", __name__)

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CANVAS = "https://canvas.instructure.com/lti/"
# Placements per message type, as the platform shows them (lti11.PLACEMENTS): as in
# Canvas, a resource link may go anywhere, content selection where content is added.
RESOURCE_LINK_PLACEMENTS = lti11.PLACEMENTS
DEEP_LINKING_PLACEMENTS = ("link_selection", "assignment_selection", "editor_button",
                           "homework_submission", "resource_selection")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _canvas() -> bool:
    return bool(current_app.config["CANVAS_EXTENSIONS"])


def _bearer() -> dict[str, Any] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return store().registration_token(token.strip())


@bp.get("/api/lti/security/openid-configuration")
def openid_configuration() -> ResponseReturnValue:
    if _bearer() is None:  # Canvas answers only with a valid registration token
        return _json({"errors": [{"message": "Invalid or expired registration token"}]}, 401)
    base = platform_url()
    lti: dict[str, Any] = {
        "product_family_code": "canvas" if _canvas() else "ltikit-platform",
        "version": "ltikit", "variables": ["ResourceLink.id", "Context.id", "User.id"],
        "messages_supported": [
            {"type": "LtiResourceLinkRequest", "placements": list(RESOURCE_LINK_PLACEMENTS)},
            {"type": "LtiDeepLinkingRequest", "placements": list(DEEP_LINKING_PLACEMENTS)}]}
    if _canvas():
        lti["variables"] += ["Canvas.user.id", "Canvas.course.id", "Canvas.api.domain"]
        lti[CANVAS + "account_name"] = "ltikit platform"
    return _json({
        "issuer": issuer(),
        "authorization_endpoint": f"{base}/api/lti/authorize_redirect",
        "registration_endpoint": f"{base}/api/lti/registrations",
        "jwks_uri": f"{base}/api/lti/security/jwks",
        "token_endpoint": f"{base}/login/oauth2/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", *SERVICE_SCOPES],
        "response_types_supported": ["id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email",
                             "picture", "locale"],
        "subject_types_supported": ["public"],
        PLATFORM_CONFIGURATION: lti})


def _http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and \
        len(value) < 2048


# Canvas's schema (lib/schemas/lti/ims/lti_tool_configuration.rb): a host name, with a
# port perhaps, and no scheme.
_DOMAIN = re.compile(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*"
                     r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(:[0-9]{1,5})?$")


def _custom_ok(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and
                             all(isinstance(v, str) for v in value.values()))


def registration_errors(body: Any) -> list[str]:
    """What Canvas (lib/schemas/lti/ims/oidc_registration.rb and lti_tool_configuration.rb)
    and Moodle (registration_helper.php) refuse in a client registration."""
    if not isinstance(body, Mapping):
        return ["the registration must be a JSON object"]
    errors = []
    if body.get("application_type", "web") != "web":
        errors.append("application_type must be web")
    if "id_token" not in (body.get("response_types") or []):
        errors.append("response_types must include id_token")
    grants = body.get("grant_types") or []
    if not {"implicit", "client_credentials"} <= set(grants if isinstance(grants, list)
                                                     else []):
        errors.append("grant_types must be implicit and client_credentials")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        errors.append("token_endpoint_auth_method must be private_key_jwt")
    for name in ("initiate_login_uri", "jwks_uri"):
        if not _http_url(body.get(name)):
            errors.append(f"{name} must be an http(s) URL")
    redirect_uris = body.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris or \
            not all(_http_url(u) for u in redirect_uris):
        errors.append("redirect_uris must be a list of http(s) URLs")
    if not isinstance(body.get("client_name"), str) or not body["client_name"].strip():
        errors.append("client_name is required")
    if not isinstance(body.get("scope", ""), str):
        errors.append("scope must be a space-separated string")
    config = body.get(TOOL_CONFIGURATION)
    if not isinstance(config, Mapping):
        return [*errors, f"{TOOL_CONFIGURATION} is required"]
    if not isinstance(config.get("domain"), str) or not _DOMAIN.match(config["domain"]):
        errors.append("domain must be a host name (and port), without a scheme")
    if not _custom_ok(config.get("custom_parameters")):
        errors.append("custom_parameters must be an object of strings")
    if not _http_url(config.get("target_link_uri")):
        errors.append("target_link_uri must be an http(s) URL")
    messages = config.get("messages")
    if not isinstance(messages, list) or not all(
            isinstance(m, Mapping) and m.get("type") in ("LtiResourceLinkRequest",
                                                         "LtiDeepLinkingRequest")
            for m in messages):
        errors.append("messages must be a list of LtiResourceLinkRequest and "
                      "LtiDeepLinkingRequest messages")
    else:
        for message in messages:
            placements = message.get("placements") or []
            if not isinstance(placements, list) or any(p not in lti11.PLACEMENTS
                                                       for p in placements):
                errors.append(f"unknown placements in {message['type']}: {placements!r}")
            if not _custom_ok(message.get("custom_parameters")):
                errors.append("a message's custom_parameters must be an object of strings")
            visibility = message.get(CANVAS + "visibility")
            if visibility not in (None, "admins", "members", "public"):
                errors.append(f"visibility must be admins, members or public, not "
                              f"{visibility!r}")
    if not isinstance(config.get("claims"), list):
        errors.append("claims must be a list")
    privacy = config.get(CANVAS + "privacy_level", "anonymous")
    if privacy not in lti11.PRIVACY_LEVELS:
        errors.append(f"privacy_level must be one of {', '.join(lti11.PRIVACY_LEVELS)}")
    return errors


def tool_from_registration(body: Mapping[str, Any], *, canvas: bool) -> dict[str, Any]:
    """``add_lti13_tool`` arguments from a checked client registration."""
    config = body[TOOL_CONFIGURATION]
    name = body["client_name"].strip()[:255]
    placements: dict[str, dict[str, Any]] = {}
    for message in config["messages"]:
        names = [p for p in message.get("placements") or [] if p in lti11.PLACEMENTS]
        if not names and message["type"] == "LtiDeepLinkingRequest":
            names = ["link_selection"]  # where a platform without placements offers it
        for placement in names:
            options = {"enabled": "true", "message_type": message["type"],
                       "text": str(message.get("label") or name),
                       "url": str(message.get("target_link_uri") or config["target_link_uri"])}
            visibility = message.get(CANVAS + "visibility")
            if visibility in ("admins", "members", "public"):
                options["visibility"] = visibility
            placements[placement] = options
    claims = set(config.get("claims") or [])
    if canvas:
        privacy = config.get(CANVAS + "privacy_level", "anonymous")
    else:  # as Moodle reads it: the claims asked for
        privacy = ("public" if "email" in claims and claims & {"name", "given_name"} else
                   "name_only" if claims & {"name", "given_name", "family_name"} else
                   "email_only" if "email" in claims else "anonymous")
    return {"name": name, "oidc_initiation_url": body["initiate_login_uri"],
            "target_link_uri": config["target_link_uri"],
            "redirect_uris": [str(u) for u in body["redirect_uris"]],
            "privacy_level": privacy,
            "custom_fields": {str(k): str(v) for k, v in
                              (config.get("custom_parameters") or {}).items()},
            "placements": placements, "public_jwk_url": body["jwks_uri"],
            "scopes": [s for s in str(body.get("scope") or "").split()
                       if s in SERVICE_SCOPES]}


@bp.post("/api/lti/registrations")
def register() -> ResponseReturnValue:
    registration = _bearer()
    if registration is None or registration["used_at"] is not None:
        return _json({"errors": [{"message": "Invalid or expired registration token"}]}, 401)
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except ValueError:
        body = None
    errors = registration_errors(body)
    if errors:
        return _json({"errors": [{"field": "registration", "message": e} for e in errors]},
                     422)
    if not store().use_registration_token(registration["id"]):
        return _json({"errors": [{"message": "Invalid or expired registration token"}]}, 401)
    tool_id, client_id, deployment_id = store().add_lti13_tool(
        **tool_from_registration(body, canvas=_canvas()))
    store().registered(registration["id"], tool_id)
    answer = dict(body, client_id=client_id)
    answer[TOOL_CONFIGURATION] = dict(body[TOOL_CONFIGURATION], deployment_id=deployment_id)
    return _json(answer)


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The first form of a page: (action, fields), as a browser would submit it."""
    parser = _Form()
    parser.feed(page)
    if parser.action is None:
        raise RuntimeError("the page has no form")
    return parser.action, parser.fields


def with_parameters(url: str, **parameters: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True),
                       *parameters.items()])
    return urlunsplit(parts._replace(query=query))


@bp.post("/tools/registrations")
def start_registration() -> ResponseReturnValue:
    """The administrator entered a tool's registration URL: frame it with a new token."""
    sent = request.form.get("csrf_token", "")
    if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
        abort(400, "The form expired; go back, reload the page and try again.")
    url = (request.form.get("registration_url") or "").strip()
    if not _http_url(url) or not urlsplit(url).hostname:
        flash("Enter the tool's registration URL (http or https).", "error")
        return redirect(url_for("platform.tools"))
    registration_id, token = store().new_registration_token(url)
    framed = with_parameters(
        url, openid_configuration=f"{platform_url()}/api/lti/security/openid-configuration",
        registration_token=token)
    parts = urlsplit(url)
    return render_template("platform/register.html", framed=framed,
                           tool_origin=f"{parts.scheme}://{parts.netloc}",
                           done=url_for("registration.registration_done",
                                        registration_id=registration_id),
                           nonce=secrets.token_urlsafe(8))


@bp.get("/tools/registrations/<int:registration_id>")
def registration_done(registration_id: int) -> ResponseReturnValue:
    registration = store().registration(registration_id)
    if registration is None or registration["tool_id"] is None:
        flash("The tool closed the registration without registering.", "error")
        return redirect(url_for("platform.tools"))
    tool = store().tool(registration["tool_id"])
    tool13 = store().lti13_tool(tool_id=registration["tool_id"])
    if tool is None or tool13 is None:
        flash("The registered tool was removed.", "error")
        return redirect(url_for("platform.tools"))
    flash(f"Registered {tool['name']} (LTI 1.3, client id {tool13['client_id']}, deployment "
          f"{tool13['deployment_id']}).", "ok")
    return redirect(url_for("platform.tools"))
