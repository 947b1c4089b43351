"""The platform's LTI Advantage services, shaped like Canvas's.

* ``POST /login/oauth2/token`` with ``grant_type=client_credentials``: the tool's signed
  client assertion (RFC 7523) is checked against the tool's JWKS (``public_jwk_url``) or
  inline key, ``aud`` must be the token URL, ``jti`` is single-use; the token granted
  carries the requested scopes that the tool's key allows.
* Assignment and Grade Services under ``/api/lti/courses/:course_id/line_items``: line
  items are assignments (as in Canvas), scores become grades (shown in the gradebook),
  results are read back; lists page with a ``Link`` header.
* Names and Role Provisioning under ``/api/lti/courses/:course_id/names_and_roles``, with
  ``role``, ``limit`` and ``rlid``, ``Link: rel="next"`` and ``rel="differences"``.

Every call needs a token with the right scope, from a tool installed in the platform, and
sees only the line items of that tool.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from flask import Blueprint, Response, current_app, g, request

from .canvas_api import _count, _page_args, page_links
from .store import current_store as store

bp = Blueprint("lti_services", __name__)

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY = AGS + "lineitem", AGS + "lineitem.readonly"
SCOPE_RESULT_READONLY, SCOPE_SCORE = AGS + "result.readonly", AGS + "score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE)
SERVICE_SCOPES = (*AGS_SCOPES, SCOPE_NRPS)

LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 3600


def _json(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, mimetype=mimetype)


def _error(status: int, message: str) -> Response:
    return _json({"errors": {"type": "unauthorized" if status == 401 else "bad_request",
                             "message": message}}, status)


# -- the token grant ----------------------------------------------------------------------

class _Assertions:
    """Client assertion ids seen (single use, for as long as the assertion is valid)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, jti: str, until: float) -> bool:
        now = time.time()
        with self._lock:
            for key in [k for k, v in self._seen.items() if v < now]:
                del self._seen[key]
            if jti in self._seen:
                return False
            self._seen[jti] = until
            return True


def _tool_keys(tool13: dict[str, Any]) -> list[dict[str, Any]]:
    if tool13.get("public_jwk"):
        return [tool13["public_jwk"]]
    url = tool13.get("public_jwk_url")
    if not url:
        return []
    response = requests.get(url, timeout=(5, 10))
    response.raise_for_status()
    keys = response.json().get("keys")
    return keys if isinstance(keys, list) else []


class ToolJWTError(ValueError):
    """A tool's JWT was refused; ``replayed``: it was valid but already used."""

    def __init__(self, message: str, *, replayed: bool = False) -> None:
        super().__init__(message)
        self.replayed = replayed


def verify_tool_jwt(token: str, *, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tool, claims) of a JWT an LTI 1.3 tool signed for ``audience`` (its ``iss`` is its
    client id; its key comes from the tool's JWKS URL or inline key).  Raises
    :class:`ToolJWTError`."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise ToolJWTError("not a JWT") from None
    tool13 = store().lti13_tool(client_id=str(unverified.get("iss", "")))
    if tool13 is None:
        raise ToolJWTError("unknown client")
    try:
        keys = {k.get("kid"): k for k in _tool_keys(tool13)}
    except (requests.RequestException, ValueError):
        raise ToolJWTError("the tool's JWKS could not be fetched") from None
    jwk = keys.get(header.get("kid")) or (next(iter(keys.values())) if len(keys) == 1 else None)
    if jwk is None:
        raise ToolJWTError("no key of the tool has this kid")
    try:
        claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=audience,
                            options={"require": ["iss", "aud", "exp", "iat"]})
    except jwt.PyJWTError as exc:
        raise ToolJWTError(str(exc)) from None
    jti = claims.get("jti") or claims.get("nonce")
    if jti is not None:
        used = current_app.extensions.setdefault("ltikit_platform_assertions", _Assertions())
        if not used.first_use(str(jti), float(claims["exp"])):
            raise ToolJWTError("this JWT was already used", replayed=True)
    return tool13, claims


def client_credentials(form, token_url: str) -> Response:
    """The client-credentials grant of LTI Advantage (answers JSON, never redirects)."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or \
            not form.get("client_assertion"):
        return _json({"error": "invalid_request",
                      "error_description": "client_assertion and its type are required"}, 400)
    try:
        unverified = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    except jwt.PyJWTError:
        return _json({"error": "invalid_request", "error_description": "bad assertion"}, 400)
    if not unverified.get("jti") or unverified.get("sub") != unverified.get("iss"):
        return _json({"error": "invalid_request",
                      "error_description": "the assertion needs a jti, and sub = iss"}, 400)
    try:
        tool13, _ = verify_tool_jwt(form["client_assertion"], audience=token_url)
    except ToolJWTError as exc:
        status, error = (400, "invalid_request") if exc.replayed else (401, "invalid_client")
        return _json({"error": error, "error_description": str(exc)}, status)
    requested = (form.get("scope") or "").split()
    granted = [s for s in requested if s in tool13["scopes"]]
    if not granted:
        return _json({"error": "invalid_scope", "error_description":
                      "none of the requested scopes is allowed for this developer key"}, 400)
    token = store().issue_service_token(tool13["tool_id"], granted, TOKEN_LIFETIME)
    _count("grant:client_credentials")
    return _json({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                  "scope": " ".join(granted)})


# -- authorisation of service calls -------------------------------------------------------

def _authorize(course_id: int, *scopes: str) -> Response | None:
    """None when the request's token may use one of ``scopes`` in this course (``g.tool``
    then holds the tool's id); else the error response."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    row = store().service_token(token) if token else None
    if row is None:
        response = _error(401, "Invalid access token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="canvas-lms"'
        return response
    if not set(scopes) & set(row["scopes"]):
        return _error(401, f"Insufficient scopes on access token: needs one of {scopes}")
    if store().course(course_id) is None:
        return _error(404, "The specified resource does not exist.")
    g.tool_id = row["tool_id"]
    return None


def _base() -> str:
    return request.host_url.rstrip("/")


def _line_item_url(course_id: int, assignment_id: int) -> str:
    return f"{_base()}/api/lti/courses/{course_id}/line_items/{assignment_id}"


def line_item_json(course_id: int, assignment: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": _line_item_url(course_id, assignment["id"]),
                            "scoreMaximum": assignment["points_possible"],
                            "label": assignment["name"],
                            "resourceLinkId": assignment["resource_link_id"]
                            or assignment["lti_id"]}
    for name, column in (("resourceId", "resource_id"), ("tag", "tag"),
                         ("startDateTime", "start_date_time"), ("endDateTime", "end_date_time")):
        if assignment.get(column):
            body[name] = assignment[column]
    return body


def _line_item(course_id: int, item_id: int, *scopes: str
               ) -> tuple[dict[str, Any] | None, Response | None]:
    """(the line item's assignment, None) when the token may use ``scopes`` on it, else
    (None, the error response): only the tool's own line items exist for it."""
    refused = _authorize(course_id, *scopes)
    if refused:
        return None, refused
    assignment = store().assignment(item_id)
    if assignment is None or assignment["course_id"] != course_id or \
            assignment["tool_id"] != g.tool_id:
        return None, _error(404, "The specified resource does not exist.")
    return assignment, None


def _page(items: list[Any]) -> tuple[list[Any], str]:
    """(this page, Canvas's Link header) for the request's ``limit`` and ``page``."""
    page, limit = _page_args(default=50, size="limit")
    return (items[(page - 1) * limit: page * limit],
            page_links(len(items), page, limit, size="limit"))


# -- Assignment and Grade Services --------------------------------------------------------

@bp.route("/api/lti/courses/<int:course_id>/line_items", methods=["GET", "POST"])
def line_items(course_id: int):
    if request.method == "POST":
        refused = _authorize(course_id, SCOPE_LINEITEM)
        if refused:
            return refused
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict) or not body.get("label") or \
                not isinstance(body.get("scoreMaximum"), (int, float)) or \
                body["scoreMaximum"] <= 0:
            return _error(400, "A line item needs a label and a positive scoreMaximum.")
        assignment_id = store().add_assignment(
            course_id, g.tool_id, str(body["label"]), float(body["scoreMaximum"]),
            resource_id=body.get("resourceId"), tag=body.get("tag"),
            resource_link_id=body.get("resourceLinkId"),
            start_date_time=body.get("startDateTime"), end_date_time=body.get("endDateTime"))
        return _json(line_item_json(course_id, store().assignment(assignment_id)), 200,
                     LINEITEM)
    refused = _authorize(course_id, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    if refused:
        return refused
    args = request.args
    items = [a for a in store().assignments(course_id) if a["tool_id"] == g.tool_id]
    for param, column in (("resource_id", "resource_id"), ("tag", "tag")):
        if args.get(param):
            items = [a for a in items if a.get(column) == args[param]]
    if args.get("resource_link_id"):
        items = [a for a in items if (a["resource_link_id"] or a["lti_id"]) ==
                 args["resource_link_id"]]
    chunk, link = _page(items)
    response = _json([line_item_json(course_id, a) for a in chunk], 200, LINEITEM_CONTAINER)
    response.headers["Link"] = link
    return response


@bp.route("/api/lti/courses/<int:course_id>/line_items/<int:item_id>",
          methods=["GET", "PUT", "DELETE"])
def line_item(course_id: int, item_id: int):
    scopes = (SCOPE_LINEITEM,) if request.method != "GET" else \
        (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    assignment, refused = _line_item(course_id, item_id, *scopes)
    if assignment is None:
        return refused
    if request.method == "DELETE":
        store().remove_assignment(item_id)
        return Response(status=204)
    if request.method == "PUT":
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict):
            return _error(400, "A line item is a JSON object.")
        values: dict[str, Any] = {}
        if "label" in body:
            values["name"] = str(body["label"])
        if isinstance(body.get("scoreMaximum"), (int, float)) and body["scoreMaximum"] > 0:
            values["points_possible"] = float(body["scoreMaximum"])
        for name, column in (("resourceId", "resource_id"), ("tag", "tag"),
                             ("startDateTime", "start_date_time"),
                             ("endDateTime", "end_date_time")):
            if name in body:
                values[column] = body[name]
        if values:
            store().update_assignment(item_id, **values)
        assignment = store().assignment(item_id)
    return _json(line_item_json(course_id, assignment), 200, LINEITEM)


@bp.post("/api/lti/courses/<int:course_id>/line_items/<int:item_id>/scores")
def scores(course_id: int, item_id: int):
    assignment, refused = _line_item(course_id, item_id, SCOPE_SCORE)
    if assignment is None:
        return refused
    body = request.get_json(silent=True, force=True)
    if request.mimetype != SCORE:
        return _error(415, f"Scores are sent as {SCORE}.")
    if not isinstance(body, dict) or not body.get("userId") or \
            body.get("activityProgress") not in ("Initialized", "Started", "InProgress",
                                                  "Submitted", "Completed") or \
            body.get("gradingProgress") not in ("FullyGraded", "Pending", "PendingManual",
                                                 "Failed", "NotReady"):
        return _error(400, "A score needs userId, activityProgress and gradingProgress.")
    try:
        moment = datetime.fromisoformat(str(body.get("timestamp")))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return _error(400, "The score needs an ISO 8601 timestamp with its offset.")
    stamp = moment.timestamp()
    user = next((u for u in store().course_users(course_id)[1]
                 if u["lti_id"] == body["userId"]), None)
    if user is None:
        return _error(422, "The user is not in this course.")
    previous = store().grade(item_id, user["id"])
    if previous and previous.get("score_timestamp") and stamp <= previous["score_timestamp"]:
        return _error(409, "The score's timestamp is not after the previous score's.")
    given, maximum = body.get("scoreGiven"), body.get("scoreMaximum")
    if given is not None and (not isinstance(given, (int, float)) or
                              not isinstance(maximum, (int, float)) or maximum <= 0 or
                              given < 0):
        return _error(400, "scoreGiven needs a positive scoreMaximum.")
    fraction = given / maximum if given is not None else None
    store().set_grade(item_id, user["id"], fraction, result_text=body.get("comment"),
                      score_given=given, score_maximum=maximum,
                      activity_progress=body["activityProgress"],
                      grading_progress=body["gradingProgress"], score_timestamp=stamp)
    return _json({"resultUrl": f"{_line_item_url(course_id, item_id)}/results/{user['id']}"})


@bp.get("/api/lti/courses/<int:course_id>/line_items/<int:item_id>/results")
def results(course_id: int, item_id: int):
    assignment, refused = _line_item(course_id, item_id, SCOPE_RESULT_READONLY)
    if assignment is None:
        return refused
    people = {u["id"]: u for u in store().course_users(course_id)[1]}
    wanted = request.args.get("user_id")
    items = []
    for grade in store().grades_of(item_id):
        user = people.get(grade["user_id"])
        if user is None or (wanted and user["lti_id"] != wanted):
            continue
        item = {"id": f"{_line_item_url(course_id, item_id)}/results/{user['id']}",
                "scoreOf": _line_item_url(course_id, item_id), "userId": user["lti_id"],
                "resultMaximum": assignment["points_possible"]}
        if grade["score"] is not None:
            item["resultScore"] = round(grade["score"] * assignment["points_possible"], 6)
        if grade.get("result_text"):
            item["comment"] = grade["result_text"]
        items.append(item)
    chunk, link = _page(items)
    response = _json(chunk, 200, RESULT_CONTAINER)
    response.headers["Link"] = link
    return response


# -- Names and Role Provisioning ----------------------------------------------------------

@bp.get("/api/lti/courses/<int:course_id>/names_and_roles")
def names_and_roles(course_id: int):
    refused = _authorize(course_id, SCOPE_NRPS)
    if refused:
        return refused
    from .lti13 import roles13

    course = store().course(course_id)
    role = request.args.get("role")
    members = []
    for user in store().course_users(course_id)[1]:
        types = [e["type"] for e in user["enrollments"]]
        roles = [r for r in roles13(types, False)
                 if "/membership" in r]  # context roles only, as Canvas sends them
        if role and role not in roles and not any(r.endswith("#" + role) for r in roles):
            continue
        members.append({"status": "Active", "user_id": user["lti_id"], "roles": roles,
                        "name": user["name"], "given_name": user["given_name"],
                        "family_name": user["family_name"], "email": user["email"],
                        "picture": f"{_base()}/images/thumbnails/{user['id']}.png",
                        "lis_person_sourcedid": user.get("sis_user_id")})
    base = f"{_base()}/api/lti/courses/{course_id}/names_and_roles"
    chunk, link = _page(members)
    _count("nrps:page")
    if 'rel="next"' not in link:
        # The last page says where to ask for changes since this read.
        link += f',<{base}?{urlencode({"since": str(int(time.time()))})}>; rel="differences"'
    context = {"id": course["lti_id"], "label": course["course_code"], "title": course["name"]}
    response = _json({"id": request.url, "context": context, "members": chunk}, 200,
                     MEMBERSHIP_CONTAINER)
    response.headers["Link"] = link
    return response


def endpoint_claims(base_url: str, course_id: int, scopes: list[str],
                    line_item_id: int | None) -> dict[str, Any]:
    """The service claims of an id_token launched in ``course_id`` (Canvas adds them only
    when the developer key has the scopes)."""
    claims: dict[str, Any] = {}
    ags = [s for s in scopes if s in AGS_SCOPES]
    if ags:
        endpoint = {"scope": ags,
                    "lineitems": f"{base_url}/api/lti/courses/{course_id}/line_items"}
        if line_item_id is not None:
            endpoint["lineitem"] = f"{endpoint['lineitems']}/{line_item_id}"
        claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = endpoint
    if SCOPE_NRPS in scopes:
        claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"] = {
            "context_memberships_url":
                f"{base_url}/api/lti/courses/{course_id}/names_and_roles",
            "service_versions": ["2.0"]}
    return claims
