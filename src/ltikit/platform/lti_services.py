"""The platform's LTI Advantage services, shaped like Canvas's.

* ``POST /login/oauth2/token`` with ``grant_type=client_credentials``: the tool's signed
  client assertion (RFC 7523) is checked against the tool's JWKS (``public_jwk_url``) or
  inline key, ``aud`` must be the token URL, ``jti`` is single-use; the token granted
  carries the requested scopes that the tool's key allows.
* Assignment and Grade Services under ``/api/lti/courses/:course_id/line_items``: line
  items are assignments (as in Canvas), scores become grades (shown in the gradebook),
  results are read back; lists page with a ``Link`` header, 10 per page by default.
* Names and Role Provisioning under ``/api/lti/courses/:course_id/names_and_roles``, with
  ``role``, ``limit`` (at most 50) and ``rlid``, ``Link: rel="next"`` with opaque page
  markers and no ``rel="last"``; no ``rel="differences"`` (Canvas has no such service).

Every call needs a token with the right scope, from a tool installed in the platform, and
sees only the line items of that tool.  Statuses and error bodies follow Canvas
(``app/controllers/lti/ims/``: ``concerns/lti_services.rb`` ``render_error``,
``concerns/gradebook_services.rb``, ``line_items_controller.rb``, ``scores_controller.rb``,
``providers/memberships_provider.rb``; ``app/serializers/lti/ims/
names_and_roles_serializer.rb``): ``{"errors": {"type": "unprocessable_entity",
"message": ...}}``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
import requests
from flask import Blueprint, Response, abort, current_app, g, request

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


_ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 404: "not_found",
                412: "precondition_failed", 415: "unsupported_media_type",
                422: "unprocessable_entity"}


def _error(status: int, message: str) -> Response:
    """Canvas's LTI service error: ``{"errors": {"type": <status name>, "message": …}}``."""
    return _json({"errors": {"type": _ERROR_TYPES.get(status, "bad_request"),
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


def verify_tool_jwt(token: str, *, audience: str, client_claim: str = "iss"
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tool, claims) of a JWT an LTI 1.3 tool signed for ``audience``; ``client_claim``
    names the claim holding its client id (``iss`` in a deep linking response, ``sub`` in
    a client assertion); its key comes from the tool's JWKS URL or inline key.  Raises
    :class:`ToolJWTError`."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise ToolJWTError("not a JWT") from None
    tool13 = store().lti13_tool(client_id=str(unverified.get(client_claim, "")))
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
                            options={"require": [client_claim, "aud", "exp", "iat"]})
    except jwt.PyJWTError as exc:
        raise ToolJWTError(str(exc)) from None
    jti = claims.get("jti") or claims.get("nonce")
    if jti is not None:
        used = current_app.extensions.setdefault("ltikit_platform_assertions", _Assertions())
        if not used.first_use(str(jti), float(claims["exp"])):
            raise ToolJWTError("this JWT was already used", replayed=True)
    return tool13, claims


def client_credentials(form: Mapping[str, str], token_url: str) -> Response:
    """The client-credentials grant of LTI Advantage (answers JSON, never redirects)."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or \
            not form.get("client_assertion"):
        return _json({"error": "invalid_request",
                      "error_description": "client_assertion and its type are required"}, 400)
    try:
        unverified = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    except jwt.PyJWTError:
        return _json({"error": "invalid_request", "error_description": "bad assertion"}, 400)
    if not unverified.get("jti") or not unverified.get("sub"):
        return _json({"error": "invalid_request",
                      "error_description": "the assertion needs a jti and a sub"}, 400)
    try:
        # Canvas finds the developer key by the assertion's sub (the client id) and leaves
        # iss free (its "LTI Advantage: client credentials" docs).
        tool13, _ = verify_tool_jwt(form["client_assertion"], audience=token_url,
                                    client_claim="sub")
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
    if not token:
        return _error(401, "Missing access token")
    row = store().service_token(token)
    if row is None:
        return _error(401, "Access token invalid - signature likely incorrect")
    if not set(scopes) & set(row["scopes"]):
        return _error(401, "Insufficient permissions")
    if store().course(course_id) is None:
        return _error(404, "Context not found")
    g.tool_id = row["tool_id"]
    return None


def _base() -> str:
    return request.host_url.rstrip("/")


def _line_item_url(course_id: int, assignment_id: int) -> str:
    return f"{_base()}/api/lti/courses/{course_id}/line_items/{assignment_id}"


def line_item_json(course_id: int, assignment: dict[str, Any] | None) -> dict[str, Any]:
    if assignment is None:  # deleted by a concurrent request
        abort(404)
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
               ) -> dict[str, Any] | Response:
    """The line item's assignment when the token may use ``scopes`` on it, else the error
    response: 404 when it is not in the course, 412 when it is another
    tool's (``verify_line_item_client_id_connection``)."""
    refused = _authorize(course_id, *scopes)
    if refused:
        return refused
    assignment = store().assignment(item_id)
    if assignment is None or assignment["course_id"] != course_id:
        return _error(404, "The specified resource does not exist.")
    if assignment["tool_id"] != g.tool_id:
        return _error(412, "Tool does not have permission to view line_item")
    return assignment


def _page(items: list[Any], *, default: int, maximum: int, nrps: bool = False
          ) -> tuple[list[Any], str]:
    """(this page, Canvas's Link header) for the request's ``limit`` or ``per_page`` and
    ``page``.  AGS lists default to 10 and keep ``limit`` in their links; NRPS caps pages
    at 50, drops ``limit`` from its links, and pages with opaque markers and no
    ``rel="last"`` (``MembershipsProvider#pagination_args``, ``Api.jsonapi_paginate``)."""
    page, size = _page_args(default=default, maximum=maximum, size="limit")
    return (items[(page - 1) * size: page * size],
            page_links(len(items), page, size, drop=("limit",) if nrps else (),
                       last=not nrps, bookmarks=nrps))


# -- Assignment and Grade Services --------------------------------------------------------

AGS_PAGE, AGS_MAX_PAGE, NRPS_MAX_PAGE = 10, 100, 50


@bp.route("/api/lti/courses/<int:course_id>/line_items", methods=["GET", "POST"])
def line_items(course_id: int) -> Response:
    if request.method == "POST":
        refused = _authorize(course_id, SCOPE_LINEITEM)
        if refused:
            return refused
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict) or not body.get("label") or \
                not _number(body.get("scoreMaximum")) or body["scoreMaximum"] <= 0:
            return _error(400, "A line item needs a label and a positive scoreMaximum.")
        # A line item a tool makes is not coupled to an assignment made in Canvas: the
        # tool may delete it (and so its assignment).
        assignment_id = store().add_assignment(
            course_id, g.tool_id, str(body["label"]), float(body["scoreMaximum"]),
            resource_id=body.get("resourceId"), tag=body.get("tag"),
            resource_link_id=body.get("resourceLinkId"),
            start_date_time=body.get("startDateTime"), end_date_time=body.get("endDateTime"),
            coupled=False)
        return _json(line_item_json(course_id, store().assignment(assignment_id)), 201,
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
    chunk, link = _page(items, default=AGS_PAGE, maximum=AGS_MAX_PAGE)
    response = _json([line_item_json(course_id, a) for a in chunk], 200, LINEITEM_CONTAINER)
    response.headers["Link"] = _ags_link(link)
    return response


def _moodle_quirks() -> bool:
    return bool(current_app.config["SERVICE_QUIRKS"] == "moodle")


def _ags_link(link: str) -> str:
    """The AGS ``Link`` header, or, with ``SERVICE_QUIRKS="moodle"``, as Moodle 4.5 writes
    it: typographic quotes around the relation and HTML-escaped URLs
    (``<…?limit=1&amp;from=1>; rel=“next”``)."""
    if not _moodle_quirks():
        return link
    moodle = re.sub(r'rel="([^"]*)"', "rel=\u201c\\1\u201d", link.replace("&", "&amp;"))
    # PHP sends the quotes as UTF-8 bytes; WSGI header values are Latin-1 text.
    return moodle.encode("utf-8").decode("latin-1")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        value == value  # not NaN


@bp.route("/api/lti/courses/<int:course_id>/line_items/<int:item_id>",
          methods=["GET", "PUT", "DELETE"])
def line_item(course_id: int, item_id: int) -> Response:
    scopes = (SCOPE_LINEITEM,) if request.method != "GET" else \
        (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    found = _line_item(course_id, item_id, *scopes)
    if isinstance(found, Response):
        return found
    assignment = found
    if request.method == "DELETE":
        if assignment["coupled"]:
            # Canvas: ``head :unauthorized if line_item.coupled`` (an empty 401).
            return Response(status=401)
        store().remove_assignment(item_id)
        return Response(status=204)
    if request.method == "PUT":
        body = request.get_json(silent=True, force=True)
        if not isinstance(body, dict):
            return _error(400, "A line item is a JSON object.")
        values: dict[str, Any] = {}
        if "label" in body:
            values["name"] = str(body["label"])
        if _number(body.get("scoreMaximum")) and body["scoreMaximum"] > 0:
            values["points_possible"] = float(body["scoreMaximum"])
        for name, column in (("resourceId", "resource_id"), ("tag", "tag"),
                             ("startDateTime", "start_date_time"),
                             ("endDateTime", "end_date_time")):
            if name in body:
                values[column] = body[name]
        if values:
            store().update_assignment(item_id, **values)
        return _json(line_item_json(course_id, store().assignment(item_id)), 200, LINEITEM)
    return _json(line_item_json(course_id, assignment), 200, LINEITEM)


ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
GRADED = ("FullyGraded", "PendingManual")
"""``Lti::Result::ACCEPT_GIVEN_SCORE_TYPES``: with any other gradingProgress Canvas ignores
scoreGiven and clears the grade."""


@bp.post("/api/lti/courses/<int:course_id>/line_items/<int:item_id>/scores")
def scores(course_id: int, item_id: int) -> Response:
    """A score, checked in the order of Canvas's ``ScoresController`` before-actions."""
    found = _line_item(course_id, item_id, SCOPE_SCORE)
    if isinstance(found, Response):
        return found
    assignment = found
    body = request.get_json(silent=True, force=True)
    if request.mimetype != SCORE:
        # Stricter than Canvas (which also parses application/json), as the AGS
        # specification and other platforms are.
        return _error(415, f"Scores are sent as {SCORE}.")
    if not isinstance(body, dict):
        return _error(400, "A score is a JSON object.")
    user = store().course_user_by_lti_id(course_id, str(body.get("userId") or ""))
    if user is None or "StudentEnrollment" not in store().enrollment_types(course_id,
                                                                            user["id"]):
        # verify_user_in_context: the 1.3 user id (or Canvas id) of a student here.
        return _error(422, "User not found in course or is not a student")
    missing = [name for name in ("userId", "activityProgress", "gradingProgress",
                                 "timestamp") if body.get(name) in (None, "")]
    if missing:
        return _error(400, f"param is missing or the value is empty: {missing[0]}")
    if body["activityProgress"] not in ACTIVITY_PROGRESS or \
            body["gradingProgress"] not in GRADING_PROGRESS:
        return _error(400, "activityProgress or gradingProgress has an unknown value.")
    try:
        moment = datetime.fromisoformat(str(body["timestamp"]))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return _error(400, f"Provided timestamp of {body['timestamp']} not a valid timestamp")
    stamp = moment.timestamp()
    previous = store().grade(item_id, user["id"])
    if _moodle_quirks() and previous and previous.get("score_timestamp") and \
            int(stamp) <= int(previous["score_timestamp"]):
        # Moodle 4.5 (mod/lti/service/gradebookservices): whole seconds, an equal timestamp
        # refused too, the reason only in the status line and a body of [].
        return Response("[]", status="409 Refusing score with an earlier timestamp for item "
                        f"{item_id} and user {user['id']}", mimetype="application/json")
    if previous and previous.get("score_timestamp") and stamp < previous["score_timestamp"]:
        # Only a strictly earlier timestamp is refused; an equal one replaces the score.
        return _error(400, f"Provided timestamp of {body['timestamp']} before last updated "
                      "timestamp")
    given, maximum = body.get("scoreGiven"), body.get("scoreMaximum")
    ignored = body["gradingProgress"] not in GRADED or given is None
    if not ignored:
        if "scoreMaximum" not in body or maximum is None:
            return _error(422, "ScoreMaximum not supplied when ScoreGiven present.")
        if not _number(maximum) or maximum < 0:
            return _error(422, "ScoreMaximum must be greater than or equal to 0")
        if not _number(given):
            return _error(400, "scoreGiven must be a number.")
    points = assignment["points_possible"]
    if ignored:
        fraction = None
    else:
        # Canvas scales scoreGiven to the line item's maximum, and does not scale when
        # scoreMaximum is 0 (ScoresController#line_item_score_maximum_scale).
        given_f, maximum_f = float(given or 0), float(maximum or 0)  # numbers: checked above
        scaled = given_f * (points / maximum_f) if abs(maximum_f) > 1e-12 else given_f
        fraction = scaled / points if points else None
    store().set_grade(item_id, user["id"], fraction, result_text=body.get("comment"),
                      score_given=given, score_maximum=maximum,
                      activity_progress=body["activityProgress"],
                      grading_progress=body["gradingProgress"], score_timestamp=stamp)
    return _json({"resultUrl": f"{_line_item_url(course_id, item_id)}/results/{user['id']}"},
                 200, SCORE)


@bp.get("/api/lti/courses/<int:course_id>/line_items/<int:item_id>/results")
def results(course_id: int, item_id: int) -> Response:
    found = _line_item(course_id, item_id, SCOPE_RESULT_READONLY)
    if isinstance(found, Response):
        return found
    assignment = found
    people = {u["id"]: u for u in store().course_users(course_id)[1]}
    wanted = request.args.get("user_id")
    items = []
    for grade in store().grades_of(item_id):
        user = people.get(grade["user_id"])
        if user is None or (wanted and wanted not in (user["lti_id"], str(user["id"]))):
            continue
        item = {"id": f"{_line_item_url(course_id, item_id)}/results/{user['id']}",
                "scoreOf": _line_item_url(course_id, item_id), "userId": user["lti_id"],
                "resultMaximum": assignment["points_possible"]}
        if grade["score"] is not None:
            item["resultScore"] = round(grade["score"] * assignment["points_possible"], 6)
        if grade.get("result_text"):
            item["comment"] = grade["result_text"]
        items.append(item)
    chunk, link = _page(items, default=AGS_PAGE, maximum=AGS_MAX_PAGE)
    response = _json(chunk, 200, RESULT_CONTAINER)
    response.headers["Link"] = _ags_link(link)
    return response


# -- Names and Role Provisioning ----------------------------------------------------------

@bp.get("/api/lti/courses/<int:course_id>/names_and_roles")
def names_and_roles(course_id: int) -> Response:
    refused = _authorize(course_id, SCOPE_NRPS)
    if refused:
        return refused
    from .lti13 import roles13

    course = store().course(course_id)
    if course is None:
        abort(404)
    tool = store().tool(g.tool_id) or {}
    privacy = tool.get("privacy_level") or "anonymous"
    names = privacy in ("name_only", "public")  # ContextExternalTool#include_name?
    emails = privacy in ("email_only", "public")  # include_email?
    role = request.args.get("role")
    members = []
    for user in store().course_users(course_id)[1]:
        types = [e["type"] for e in user["enrollments"]]
        roles = [r for r in roles13(types, False)
                 if "/membership" in r]  # context roles only, as Canvas sends them
        if role and role not in roles and not any(r.endswith("#" + role) for r in roles):
            continue
        member: dict[str, Any] = {"status": "Active"}
        if names:
            member.update(name=user["name"], given_name=user["given_name"],
                          family_name=user["family_name"])
        if privacy == "public":
            member["picture"] = f"{_base()}/images/thumbnails/{user['id']}.png"
        if emails:
            member["email"] = user["email"]
        if names and user.get("sis_user_id"):
            member["lis_person_sourcedid"] = user["sis_user_id"]
        member.update(user_id=user["lti_id"], lti11_legacy_user_id=user["lti_context_id"],
                      roles=roles)
        members.append(member)
    chunk, link = _page(members, default=NRPS_MAX_PAGE, maximum=NRPS_MAX_PAGE, nrps=True)
    _count("nrps:page")
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
