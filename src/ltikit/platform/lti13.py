"""The platform side of LTI 1.3: keys, the OIDC auth endpoint, Canvas-shaped id_tokens.

Paths follow Canvas's (``/api/lti/authorize_redirect``, ``/api/lti/security/jwks``).  The
issuer is ``LTI13_ISSUER``, by default ``https://canvas.instructure.com`` as on Canvas
Cloud, whose endpoints live on other hosts: a tool must take its endpoints from its
registration, never derive them from ``iss``.
Claims follow Canvas's shape (``lib/lti/messages/jwt_message.rb``): the LTI claims, the
user's name and email by privacy level, ``lti11_legacy_user_id``, Canvas's placement
extension, and Canvas ids only as custom fields the tool declares.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .lti11 import PLAIN_FAMILY, LaunchContext, _substitute
from .store import PlatformStore

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"

# What Canvas asks for per deep linking placement (``DEEP_LINKING_DETAILS`` in
# lib/lti/messages/deep_linking_request.rb): accept_types, accept_multiple, auto_create,
# document targets, media types.  Canvas sends no ``data`` and no ``accept_lineitem``.
DEEP_LINKING_DETAILS: dict[str, tuple[list[str], bool, bool, list[str], list[str]]] = {
    "assignment_selection": (["ltiResourceLink"], False, False, ["iframe", "window"],
                             ["application/vnd.ims.lti.v1.ltilink"]),
    "editor_button": (["link", "file", "html", "ltiResourceLink", "image"], True, False,
                      ["embed", "iframe", "window"],
                      ["image/*", "text/html", "application/vnd.ims.lti.v1.ltilink", "*/*"]),
    "homework_submission": (["file", "ltiResourceLink"], False, False, ["iframe"], ["*/*"]),
    "link_selection": (["ltiResourceLink"], True, False, ["iframe", "window"],
                       ["application/vnd.ims.lti.v1.ltilink"]),
}
_DEFAULT_DETAILS = (["ltiResourceLink"], False, False, ["iframe", "window"],
                    ["application/vnd.ims.lti.v1.ltilink"])


def accepted_types(placement: str) -> list[str]:
    return DEEP_LINKING_DETAILS.get(placement, _DEFAULT_DETAILS)[0]


def deep_linking_settings(placement: str, *, return_url: str) -> dict[str, Any]:
    types, multiple, auto_create, targets, media = \
        DEEP_LINKING_DETAILS.get(placement, _DEFAULT_DETAILS)
    return {"deep_link_return_url": return_url, "accept_types": types,
            "accept_presentation_document_targets": targets,
            "accept_media_types": ",".join(media), "accept_multiple": multiple,
            "auto_create": auto_create}


MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person"

_ROLES = {  # Canvas's LTI 1.3 role URIs per enrollment type
    "TeacherEnrollment": [f"{MEMBERSHIP}#Instructor"],
    "TaEnrollment": [f"{MEMBERSHIP}#Instructor", f"{MEMBERSHIP}/Instructor#TeachingAssistant"],
    "DesignerEnrollment": [f"{MEMBERSHIP}#ContentDeveloper"],
    "StudentEnrollment": [f"{MEMBERSHIP}#Learner"],
    "ObserverEnrollment": [f"{MEMBERSHIP}#Mentor"],
}


def roles13(enrollment_types: list[str], account_admin: bool) -> list[str]:
    roles: list[str] = []
    for kind in enrollment_types:
        roles += _ROLES.get(kind, [])
    if "TeacherEnrollment" in enrollment_types or "TaEnrollment" in enrollment_types:
        roles.append(f"{INSTITUTION}#Instructor")
    elif "StudentEnrollment" in enrollment_types:
        roles.append(f"{INSTITUTION}#Student")
    if account_admin:
        roles += [f"{INSTITUTION}#Administrator", f"{SYSTEM}#Administrator"]
    roles.append(f"{SYSTEM}#User")
    return roles


class PlatformKeys:
    """The platform's signing keys, kept in its data file.

    Like Canvas, the platform signs with its newest key and publishes the previous one
    too, so that id_tokens signed just before a rotation still verify; a tool meets the new
    ``kid`` at the next launch and must fetch the JWKS again.  ``rotate()`` makes a new key
    (``DevPlatform.rotate_lti13_key()``); with ``LTI13_KEY_ROTATION`` seconds set, the
    platform rotates by itself when the newest key is that old.
    """

    KEPT = 2  # the newest key and the one before it

    def __init__(self, store: PlatformStore) -> None:
        self.store = store
        self._keys = self._load()

    def _load(self) -> list[dict[str, Any]]:
        raw = self.store.setting("lti13_keys", lambda: json.dumps([_new_key()]))
        keys: list[dict[str, Any]] = json.loads(raw)
        return keys

    def rotate(self) -> str:
        """Make a new signing key; returns its kid."""
        keys = [*self._keys, _new_key()][-self.KEPT:]
        self.store.put_setting("lti13_keys", json.dumps(keys))
        self._keys = keys
        return str(keys[-1]["kid"])

    def rotate_if_older_than(self, seconds: float | None) -> None:
        if seconds and time.time() - self._keys[-1]["created"] >= seconds:
            self.rotate()

    @property
    def kid(self) -> str:
        return str(self._keys[-1]["kid"])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(_public_jwk(k["pem"], k["kid"])) for k in self._keys]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        newest = self._keys[-1]
        return jwt.encode(dict(claims), _private_key(newest["pem"]), algorithm="RS256",
                          headers={"kid": newest["kid"], "typ": "JWT"})


def _new_key() -> dict[str, Any]:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    return {"kid": uuid.uuid4().hex[:16], "pem": pem, "created": time.time()}


@functools.lru_cache(maxsize=8)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - the platform makes RSA keys
        raise TypeError("the platform's signing key is not an RSA key")
    return key


@functools.lru_cache(maxsize=8)
def _public_jwk(pem: str, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(_private_key(pem).public_key()))
    jwk.update(kid=kid, alg="RS256", use="sig")
    return jwk


def message_hints(store: PlatformStore) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(store.instance_secret, salt="ltikit.platform.lti13-hint")


HINT_LIFETIME = 300
"""Seconds a login initiation's ``lti_message_hint`` stays usable (Canvas: 5 minutes)."""


def read_hint(store: PlatformStore, hint: str, max_age: int = HINT_LIFETIME
              ) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = message_hints(store).loads(hint, max_age=max_age)
        return data
    except BadSignature:
        return None


def id_token_claims(ctx: LaunchContext, *, issuer: str, client_id: str, deployment_id: str,
                    nonce: str,
                    target_link_uri: str, placement: str,
                    deep_linking: dict[str, Any] | None = None) -> dict[str, Any]:
    tool, user, course, account = ctx.tool, ctx.user, ctx.course, ctx.account
    privacy = tool.get("privacy_level") or "anonymous"
    now = int(time.time())
    context_row = course or account
    claims: dict[str, Any] = {
        "iss": issuer, "aud": client_id, "azp": client_id, "sub": user["lti_id"],
        "iat": now, "exp": now + 3600, "nonce": nonce, "locale": user.get("locale") or "en",
        CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": deployment_id, CLAIM + "target_link_uri": target_link_uri,
        CLAIM + "resource_link": {
            "id": (ctx.assignment or ctx.item or context_row)["lti_id"],
            "title": ctx.assignment["name"] if ctx.assignment else
            (ctx.item or {}).get("title") or tool["name"],
            "description": None},
        CLAIM + "roles": roles13(ctx.enrollment_types, bool(user.get("account_admin"))),
        CLAIM + "context": {"id": context_row["lti_id"], "title": context_row["name"],
                            **({"label": course["course_code"], "type": [
                                "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]}
                               if course else {})},
        CLAIM + "tool_platform": {"guid": f"{ctx.guid}.ltikit-platform",
                                  "name": account["name"], "version": "cloud",
                                  "product_family_code": "canvas"},
        CLAIM + "launch_presentation": {"document_target": "iframe",
                                        "return_url": ctx.return_url,
                                        "locale": user.get("locale") or "en"},
        # The 1.1 id, for tools moving from 1.1; ``sub`` is another id (as in Canvas).
        CLAIM + "lti11_legacy_user_id": user["lti_context_id"],
        CLAIM + "lti1p1": {"user_id": user["lti_context_id"]},
        "https://www.instructure.com/placement": placement,
        CLAIM + "custom": {name: _substitute(str(value), ctx) for name, value in {
            **(tool.get("custom_fields") or {}),
            # Custom parameters a deep-linked link carries come on top of the tool's.
            **((ctx.assignment or ctx.item or {}).get("custom_fields") or {})}.items()},
    }
    if not ctx.canvas:
        del claims["https://www.instructure.com/placement"]
        claims[CLAIM + "tool_platform"].update(product_family_code=PLAIN_FAMILY,
                                               version="1.0")
    if deep_linking is not None:
        claims[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
        del claims[CLAIM + "resource_link"]
        claims[DL_SETTINGS] = deep_linking
    if privacy in ("name_only", "public"):
        claims.update(name=user["name"], given_name=user["given_name"],
                      family_name=user["family_name"])
    if privacy in ("email_only", "public"):
        claims["email"] = user["email"]
    if privacy == "public":
        claims["picture"] = f"{ctx.platform_url}/images/thumbnails/{user['id']}.png"
        claims[CLAIM + "lis"] = {"person_sourcedid": user.get("sis_user_id"),
                                 "course_offering_sourcedid":
                                     course.get("sis_course_id") if course else None}
    return claims


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def tool_from_canvas_json(config: Mapping[str, Any], *, name: str | None = None
                          ) -> dict[str, Any]:
    """``add_lti13_tool`` arguments from Canvas's LTI 1.3 developer-key JSON (what Canvas
    reads from "Enter URL" or "Paste JSON"): title, oidc_initiation_url, target_link_uri,
    custom_fields and, in the canvas.instructure.com extension, privacy_level and the
    placements.  ``name`` renames the tool and its link texts."""
    if not isinstance(config, Mapping):
        raise ValueError("The LTI 1.3 configuration must be a JSON object.")
    missing = [k for k in ("title", "oidc_initiation_url", "target_link_uri") if not config.get(k)]
    if missing:
        raise ValueError(f"The LTI 1.3 configuration has no {', '.join(missing)}.")
    extension = next((e for e in config.get("extensions") or []
                      if isinstance(e, Mapping) and
                      e.get("platform") == "canvas.instructure.com"), {})
    settings = extension.get("settings") or {}
    placements: dict[str, dict[str, Any]] = {}
    for entry in settings.get("placements") or []:
        if not isinstance(entry, Mapping) or not entry.get("placement"):
            continue
        options = {k: str(v) for k, v in entry.items()
                   if k in ("text", "visibility", "windowTarget", "default", "message_type")}
        options["enabled"] = "true"
        if entry.get("target_link_uri"):
            options["url"] = str(entry["target_link_uri"])
        if name:
            options["text"] = name
        placements[str(entry["placement"])] = options
    # Canvas's key form asks for the redirect URIs separately; what an admin enters is every
    # launch URL of the tool (its target link URI and each placement's).
    redirect_uris = config.get("redirect_uris") or list(dict.fromkeys(
        [config["target_link_uri"], *(o["url"] for o in placements.values() if o.get("url"))]))
    scopes = config.get("scopes") or []
    return {"name": name or str(config["title"]),
            "scopes": [str(s) for s in scopes] if isinstance(scopes, list) else [],
            "public_jwk_url": str(config["public_jwk_url"]) if config.get("public_jwk_url")
            else None,
            "public_jwk": config.get("public_jwk") if isinstance(config.get("public_jwk"),
                                                                 Mapping) else None,
            "oidc_initiation_url": str(config["oidc_initiation_url"]),
            "target_link_uri": str(config["target_link_uri"]),
            "redirect_uris": [str(u) for u in redirect_uris],
            "privacy_level": str(extension.get("privacy_level") or "anonymous"),
            "custom_fields": {str(k): str(v) for k, v in
                              (config.get("custom_fields") or {}).items()},
            "placements": placements}
