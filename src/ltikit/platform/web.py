"""The platform's pages: people, courses, tools, launches, grades.

The current user is whoever was picked in the switcher at the top of every page (kept in
the platform's own session cookie): there are no passwords on a development platform.
Launches follow Canvas's URLs (``/courses/:id/external_tools/:tool_id``,
``/courses/:id/assignments/:id``, ``/accounts/:id/external_tools/:id``,
``/users/:id/external_tools/:id``) and shape: the page shows the tool in an iframe whose
document is a self-submitting form POSTing the signed parameters to the tool.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any, TypeVar

import requests
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from . import lti11
from .store import PlatformStore
from .store import current_store as store

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

log = logging.getLogger("ltikit.platform")

bp = Blueprint("platform", __name__)

ENROLLMENT_LABELS = {"TeacherEnrollment": "Teacher", "TaEnrollment": "TA",
                     "DesignerEnrollment": "Designer", "StudentEnrollment": "Student",
                     "ObserverEnrollment": "Observer"}
PLACEMENT_LABELS = {"course_navigation": "Course navigation",
                    "account_navigation": "Account navigation",
                    "user_navigation": "User navigation", "editor_button": "Editor button",
                    "homework_submission": "Homework submission",
                    "resource_selection": "Resource selection",
                    "link_selection": "Link selection",
                    "assignment_selection": "Assignment selection"}


def platform_url() -> str:
    return request.host_url.rstrip("/")


def issuer() -> str:
    """The LTI 1.3 issuer (``LTI13_ISSUER``; else the platform's own URL)."""
    return current_app.config.get("LTI13_ISSUER") or platform_url()


@bp.before_app_request
def load_user() -> None:
    user_id = session.get("user_id")
    g.user = store().user(user_id) if user_id else None
    if g.user is None:  # first visit: the teacher, the user most tool developers test as
        g.user = store().user_by_login("teacher")


@bp.app_context_processor
def layout_values() -> dict[str, Any]:
    return {"people": store().people(), "current_user": g.get("user"),
            "ENROLLMENT_LABELS": ENROLLMENT_LABELS, "PLACEMENT_LABELS": PLACEMENT_LABELS,
            "csrf_token": _csrf_token}


_Row = TypeVar("_Row")


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


@bp.before_app_request
def check_csrf() -> None:
    # The platform's own forms carry a token; tool-facing endpoints (OAuth2 token, API,
    # outcomes) are called by servers and authenticate otherwise, a deep linking
    # response is a form from the tool's page whose signed JWT is the proof, and the OIDC
    # auth request may be a form POST from the tool's page (as Canvas skips its
    # authenticity token there; the single-use lti_message_hint is its check).
    if request.method == "POST" and request.blueprint == "platform" and \
            request.endpoint not in ("platform.grade_passback",
                                     "platform.deep_linking_response",
                                     "platform.lti13_authorize"):
        sent = request.form.get("csrf_token", "")
        if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
            abort(400, "The form expired; go back, reload the page and try again.")


# -- people ---------------------------------------------------------------------------------

@bp.post("/switch_user")
def switch_user() -> ResponseReturnValue:
    user = store().user(request.form.get("user_id", type=int) or 0)
    if user is None:
        abort(400, "No such user.")
    session["user_id"] = user["id"]
    target = request.form.get("next") or ""
    return redirect(target if target.startswith("/") and not target.startswith("//")
                    else url_for("platform.home"))


@bp.get("/")
def home() -> ResponseReturnValue:
    user = g.user
    courses = store().courses_for(None if user["account_admin"] else user["id"])
    nav = [t for t in store().tools() if lti11.placement_settings(t, "user_navigation")]
    account_nav = [t for t in store().tools()
                   if lti11.placement_settings(t, "account_navigation")] \
        if user["account_admin"] else []
    return render_template("platform/home.html", courses=courses, user_tools=nav,
                           account_tools=account_nav, account=store().account())


# -- courses --------------------------------------------------------------------------------

def _course_or_404(course_id: int) -> dict[str, Any]:
    course = store().course(course_id)
    if course is None:
        abort(404, "No such course.")
    return dict(course)


def _found(row: _Row | None, what: str) -> _Row:
    """``row``, or a 404 page: it was deleted while the page was being made."""
    if row is None:
        abort(404, f"No such {what}.")
    return row


def _may_view(course: dict[str, Any]) -> list[str]:
    types = store().enrollment_types(course["id"], g.user["id"])
    if not types and not g.user["account_admin"]:
        abort(403, f"{g.user['name']} is not enrolled in {course['name']}.")
    return types


def _is_staff(types: list[str]) -> bool:
    return bool(g.user["account_admin"] or {"TeacherEnrollment", "TaEnrollment"} & set(types))


@bp.get("/courses/<int:course_id>")
def course(course_id: int) -> ResponseReturnValue:
    course = _course_or_404(course_id)
    types = _may_view(course)
    tools = store().tools()
    return render_template(
        "platform/course.html", course=course, enrollment_types=types,
        is_staff=_is_staff(types), tools=tools,
        nav_tools=[t for t in tools if _visible_in_nav(t, types)],
        editor_tools=[t for t in tools if lti11.placement_settings(t, "editor_button")],
        selection_tools=[t for t in tools if any(
            lti11.placement_settings(t, p) for p in
            ("resource_selection", "link_selection", "assignment_selection"))],
        assignments=store().assignments(course_id), items=store().content_items(course_id))


def _visible_in_nav(tool: dict[str, Any], types: list[str]) -> bool:
    options = lti11.placement_settings(tool, "course_navigation")
    if options is None:
        return False
    visibility = options.get("visibility", "public")
    if visibility == "admins":
        return _is_staff(types)
    return True  # "public" and "members": everyone who can see the course page here


@bp.post("/courses/<int:course_id>/assignments")
def add_assignment(course_id: int) -> ResponseReturnValue:
    course = _course_or_404(course_id)
    if not _is_staff(_may_view(course)):
        abort(403, "Only teachers can add assignments.")
    tool = store().tool(request.form.get("tool_id", type=int) or 0)
    name = (request.form.get("name") or "").strip()
    points = request.form.get("points_possible", type=float)
    if tool is None or not name or points is None or points < 0:
        abort(400, "An assignment needs a tool, a name and points possible (0 or more).")
    assignment_id = store().add_assignment(course_id, tool["id"], name, points)
    return redirect(url_for("platform.assignment", course_id=course_id,
                            assignment_id=assignment_id))


@bp.get("/courses/<int:course_id>/assignments/<int:assignment_id>")
def assignment(course_id: int, assignment_id: int) -> ResponseReturnValue:
    course = _course_or_404(course_id)
    types = _may_view(course)
    assignment = store().assignment(assignment_id)
    if assignment is None or assignment["course_id"] != course_id:
        abort(404, "No such assignment.")
    tool = _found(store().tool(assignment["tool_id"]), "tool")
    grade = store().grade(assignment_id, g.user["id"])
    return render_template(
        "platform/launch.html", course=course, tool=tool, assignment=assignment,
        grade=grade, placement="assignment", title=assignment["name"],
        homework=lti11.placement_settings(tool, "homework_submission") is not None and
        "StudentEnrollment" in types,
        frame_url=url_for("platform.launch_form", kind="courses", context_id=course_id,
                          tool_id=tool["id"], placement="assignment",
                          assignment_id=assignment_id))


@bp.get("/courses/<int:course_id>/gradebook")
def gradebook(course_id: int) -> ResponseReturnValue:
    course = _course_or_404(course_id)
    if not _is_staff(_may_view(course)):
        abort(403, "Only teachers and TAs can see the gradebook.")
    _, students = store().course_users(course_id, types=["StudentEnrollment"])
    return render_template("platform/gradebook.html", course=course, students=students,
                           assignments=store().assignments(course_id),
                           grades=store().gradebook(course_id))


# -- launching ------------------------------------------------------------------------------

def _launch_context_or_abort(kind: str, context_id: int
                             ) -> tuple[dict[str, Any] | None, list[str]]:
    """(course or None, the current user's enrollment types there) where the current user
    may launch a tool: a course they can see, the account (admins), their own user page."""
    if kind == "courses":
        course = _course_or_404(context_id)
        return course, _may_view(course)
    if kind == "accounts" and not g.user["account_admin"]:
        abort(403, "Account navigation is for account admins.")
    if kind == "users" and context_id != g.user["id"]:
        abort(403, "You can only open your own user navigation tools.")
    return None, []


@bp.get("/<any(courses,accounts,users):kind>/<int:context_id>/external_tools/<int:tool_id>")
def external_tool(kind: str, context_id: int, tool_id: int) -> ResponseReturnValue:
    tool = store().tool(tool_id)
    if tool is None:
        abort(404, "No such tool.")
    placement = request.args.get("placement") or {
        "courses": "course_navigation", "accounts": "account_navigation",
        "users": "user_navigation"}[kind]
    if placement not in lti11.PLACEMENTS or lti11.placement_settings(tool, placement) is None:
        abort(404, f"{tool['name']} has no {placement} placement.")
    course, _ = _launch_context_or_abort(kind, context_id)
    frame_url = url_for("platform.launch_form", kind=kind, context_id=context_id,
                        tool_id=tool_id, placement=placement)
    options = lti11.placement_settings(tool, placement) or {}
    if options.get("windowTarget") == "_blank":
        return render_template("platform/new_window.html", tool=tool, course=course,
                               frame_url=frame_url, title=options.get("text") or tool["name"])
    return render_template("platform/launch.html", tool=tool, course=course,
                           placement=placement, frame_url=frame_url, options=options,
                           title=options.get("text") or tool["name"])


def launch_context(kind: str, context_id: int, tool_id: int, placement: str,
                   assignment_id: int | None, item_id: int | None = None
                   ) -> tuple[lti11.LaunchContext, str]:
    """Who launches what, where (checked against the current user): (context, tool URL)."""
    tool = store().tool(tool_id)
    if tool is None:
        abort(404, "No such tool.")
    account = store().account()
    course, types = _launch_context_or_abort(kind, context_id)
    assignment, sourcedid, item = None, None, None
    if placement == "assignment":
        assignment = store().assignment(assignment_id or 0)
        if course is None or assignment is None or assignment["course_id"] != course["id"] \
                or assignment["tool_id"] != tool_id:
            abort(404, "No such assignment.")
        sourcedid = store().sourcedid(tool_id, course["id"], assignment["id"], g.user["id"])
        url = assignment.get("url") or tool.get("url") or \
            lti11.launch_url(tool, "course_navigation")
    elif placement == "module_item":
        item = store().content_item(item_id or 0)
        if course is None or item is None or item["course_id"] != course["id"] or \
                item["tool_id"] != tool_id or item["type"] != "ltiResourceLink":
            abort(404, "No such module item.")
        url = item["url"] or tool.get("url")
    elif lti11.placement_settings(tool, placement) is None:
        abort(404, f"{tool['name']} has no {placement} placement.")
    else:
        url = lti11.launch_url(tool, placement)
    if not url:
        abort(400, f"{tool['name']} has no launch URL for this placement.")
    return_url = platform_url() + url_for(
        "platform.external_content_return", kind=kind, context_id=context_id)
    return lti11.LaunchContext(
        platform_url=platform_url(), guid=store().guid, account=account, tool=tool,
        user=g.user, placement=placement, course=course, enrollment_types=types,
        assignment=assignment, sourcedid=sourcedid, return_url=return_url,
        item=item if placement == "module_item" else None,
        sections=store().sections_of(course["id"], g.user["id"]) if course else [],
        canvas=bool(current_app.config["CANVAS_EXTENSIONS"])), url


def _form(url: str, fields: list[tuple[str, str]], method: str = "post") -> Response:
    response = Response(render_template("platform/launch_form.html", url=url, fields=fields,
                                        method=method))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<any(courses,accounts,users):kind>/<int:context_id>/external_tools/<int:tool_id>"
        "/launch")
def launch_form(kind: str, context_id: int, tool_id: int) -> ResponseReturnValue:
    """The iframe's document: the signed launch (1.1), or the OIDC login initiation (1.3),
    submitted to the tool at once."""
    placement = request.args.get("placement", "")
    assignment_id = request.args.get("assignment_id", type=int)
    item_id = request.args.get("item_id", type=int)
    ctx, url = launch_context(kind, context_id, tool_id, placement, assignment_id, item_id)
    lti13_tool = store().lti13_tool(tool_id=tool_id)
    if lti13_tool is not None:
        from .lti13 import HINT_LIFETIME, message_hints

        hint = message_hints(store()).dumps({
            "kind": kind, "context_id": context_id, "tool_id": tool_id,
            "placement": placement, "assignment_id": assignment_id, "item_id": item_id,
            "user_id": g.user["id"], "target_link_uri": url,
            "verifier": store().begin_lti13_launch(HINT_LIFETIME)})
        # Canvas's login_hint is the user's 1.1 id; the id_token's sub is another id.
        fields = [("iss", issuer()), ("login_hint", g.user["lti_context_id"]),
                  ("target_link_uri", url), ("lti_message_hint", hint),
                  ("client_id", lti13_tool["client_id"]),
                  ("lti_deployment_id", lti13_tool["deployment_id"]),
                  ("deployment_id", lti13_tool["deployment_id"]),
                  ("canvas_region", "not_configured"), ("canvas_environment", "prod"),
                  *_storage_target()]
        log.info("1.3 login initiation: tool=%s user=%s", tool_id, g.user["id"])
        return _form(lti13_tool["oidc_initiation_url"], fields)
    params = lti11.launch_params(ctx)
    tool = ctx.tool
    fields = lti11.sign(url, params, tool["consumer_key"], tool["shared_secret"])
    store().log_launch(tool_id, g.user["id"], placement, url, dict(fields))
    log.info("launch: tool=%s user=%s placement=%s", tool_id, g.user["id"], placement)
    return _form(url, fields)


@bp.route("/api/lti/authorize_redirect", methods=["GET", "POST"])
def lti13_authorize() -> ResponseReturnValue:
    """The OIDC auth endpoint: an id_token for the current user, POSTed to the tool."""
    from .lti13 import PlatformKeys, id_token_claims, message_hints, read_hint

    values = request.values
    tool13 = store().lti13_tool(client_id=values.get("client_id", ""))
    if tool13 is None:
        abort(400, "Unknown client_id.")
    redirect_uri = values.get("redirect_uri", "")
    if redirect_uri not in tool13["redirect_uris"]:
        abort(400, "The redirect_uri is not registered for this tool.")
    for name, expected in (("scope", "openid"), ("response_type", "id_token"),
                           ("response_mode", "form_post"), ("prompt", "none")):
        if values.get(name) != expected:
            abort(400, f"{name} must be {expected}.")
    if not values.get("nonce") or not values.get("state"):
        abort(400, "The auth request needs a nonce and a state.")
    hint = read_hint(store(), values.get("lti_message_hint", ""))
    if hint is None or hint["tool_id"] != tool13["tool_id"]:
        abort(400, "The lti_message_hint is missing, forged or expired.")
    if values.get("login_hint") != g.user["lti_context_id"] or \
            hint["user_id"] != g.user["id"]:
        # The browser's platform session is not the user the login was for.
        return _form(redirect_uri, [("error", "login_required"), ("error_description",
                     "Must have an active user session"), ("state", values["state"])])
    if not store().take_lti13_launch(str(hint.get("verifier", ""))):
        # Canvas caches a launch at login initiation and deletes it when it makes the
        # id_token (app/controllers/lti/ims/authentication_controller.rb): a hint works
        # once, within five minutes; a tool replaying a login gets this error.
        return _form(redirect_uri, [("error", "launch_no_longer_valid"), (
            "error_description", "The launch has either expired or already been consumed"),
            ("state", values["state"])])
    ctx, _ = launch_context(hint["kind"], hint["context_id"], hint["tool_id"],
                            hint["placement"], hint["assignment_id"], hint.get("item_id"))
    options = lti11.placement_settings(ctx.tool, hint["placement"]) or {}
    deep_linking = None
    if options.get("message_type") == "LtiDeepLinkingRequest":
        from .lti13 import deep_linking_settings

        # Canvas sends no settings.data; what the response answers is in the return URL
        # (Canvas puts the placement there and knows the user by its session).
        deep_linking = deep_linking_settings(
            hint["placement"], return_url=platform_url() + url_for(
                "platform.deep_linking_response", kind=hint["kind"],
                context_id=hint["context_id"], placement=hint["placement"],
                modal="true", request=message_hints(store()).dumps({
                    "tool_id": tool13["tool_id"], "placement": hint["placement"],
                    "user_id": g.user["id"]})))
    claims = id_token_claims(ctx, issuer=issuer(), client_id=tool13["client_id"],
                             deployment_id=tool13["deployment_id"], nonce=values["nonce"],
                             target_link_uri=hint["target_link_uri"],
                             placement=hint["placement"], deep_linking=deep_linking)
    if ctx.course is not None:
        from .lti_services import endpoint_claims

        claims.update(endpoint_claims(platform_url(), ctx.course["id"], tool13["scopes"],
                                      ctx.assignment["id"] if ctx.assignment else None))
    keys = PlatformKeys(store())
    keys.rotate_if_older_than(current_app.config["LTI13_KEY_ROTATION"])
    token = keys.sign(claims)
    store().log_launch(tool13["tool_id"], g.user["id"], hint["placement"], redirect_uri,
                       {"id_token (decoded)": json.dumps(claims, indent=1)})
    return _form(redirect_uri, [("id_token", token), ("state", values["state"]),
                                *_storage_target()])


STORAGE_FRAME = "post_message_forwarding"


def _storage_target() -> list[tuple[str, str]]:
    # Canvas names its storage frame in both the login initiation and the launch.
    return [("lti_storage_target", STORAGE_FRAME)] if current_app.config["PLATFORM_STORAGE"] \
        else []


@bp.get("/post_message_forwarding")
def post_message_forwarding() -> ResponseReturnValue:
    """The platform-storage frame: keeps ``lti.put_data`` values per tool origin for the
    life of the course page, and answers ``lti.get_data`` and ``lti.capabilities``."""
    response = Response(render_template("platform/post_message_forwarding.html",
                                        frame=STORAGE_FRAME))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<any(courses,accounts):kind>/<int:context_id>/deep_linking_response")
def deep_linking_response(kind: str, context_id: int) -> ResponseReturnValue:
    """Where a tool's ``LtiDeepLinkingResponse`` arrives (a form POST from its page: the
    signed JWT, not a CSRF token, proves it).  The items become assignments (graded
    ltiResourceLinks) or module items, listed on the course page."""
    from .lti13 import DL_CLAIM, read_hint
    from .lti_services import ToolJWTError, verify_tool_jwt

    course, _ = _launch_context_or_abort(kind, context_id)
    try:
        # The response's aud is the platform's issuer (LTI Deep Linking 2.0 §4.2).
        tool13, claims = verify_tool_jwt(request.form.get("JWT", ""), audience=issuer())
    except ToolJWTError as exc:
        abort(400, f"The deep linking response was refused: {exc}")
    if claims.get(CLAIM + "message_type") != "LtiDeepLinkingResponse" or \
            claims.get(CLAIM + "version") != "1.3.0" or \
            claims.get(CLAIM + "deployment_id") != tool13["deployment_id"]:
        abort(400, "Not an LTI 1.3 deep linking response for this deployment.")
    data = read_hint(store(), request.args.get("request", ""), max_age=3600)
    if data is None or data["tool_id"] != tool13["tool_id"] or data["user_id"] != g.user["id"]:
        abort(400, "The response does not answer a deep linking request of this user.")
    items = claims.get(DL_CLAIM + "content_items") or []
    if not isinstance(items, list):
        abort(400, "content_items must be a list.")
    items = [item for item in items if isinstance(item, dict)]
    for item in items:  # all or nothing
        url = item.get("url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://",
                                                                             "https://"))):
            abort(400, "Content item URLs must be http:// or https://.")
    added = [_add_content_item(course, tool13["tool_id"], data["placement"], item)
             for item in items]
    return render_template("platform/deep_linked.html", course=course, added=added,
                           message=claims.get(DL_CLAIM + "msg"),
                           error=claims.get(DL_CLAIM + "errormsg"))


def _add_content_item(course: dict[str, Any] | None, tool_id: int, placement: str,
                      item: dict[str, Any]) -> dict[str, Any]:
    from .lti13 import accepted_types

    kind = str(item.get("type", ""))
    if kind not in accepted_types(placement):
        # Canvas acts only on the types it asked for (link_selection: ltiResourceLink).
        return {"kind": "ignored", "title": f"(a {kind!r} item, which {placement} does not "
                f"accept: it takes {', '.join(accepted_types(placement))})"}
    url = item.get("url")
    title = str(item.get("title") or "") or None
    custom = item.get("custom")
    if not isinstance(custom, dict):
        custom = {}
    if course is None:
        abort(400, "Deep linking here needs a course.")
    line_item = item.get("lineItem") if isinstance(item.get("lineItem"), dict) else None
    if kind == "ltiResourceLink" and (line_item or placement == "assignment_selection"):
        line_item = line_item or {}
        points = line_item.get("scoreMaximum")
        assignment_id = store().add_assignment(
            course["id"], tool_id, str(line_item.get("label") or title or "Untitled"),
            float(points) if isinstance(points, (int, float)) and points > 0 else 10.0,
            resource_id=line_item.get("resourceId"), tag=line_item.get("tag"),
            url=url, custom_fields=json.dumps(
                {str(k): str(v) for k, v in custom.items()}))
        assignment = _found(store().assignment(assignment_id), "assignment")
        return {"kind": "assignment", "title": assignment["name"],
                "href": url_for("platform.assignment", course_id=course["id"],
                                assignment_id=assignment_id)}
    if kind not in ("ltiResourceLink", "link", "file", "image", "html"):
        return {"kind": "ignored", "title": f"(an item of unknown type {kind!r})"}
    item_id = store().add_content_item(
        course["id"], tool_id, kind, title=title, text=item.get("text"), url=url,
        html=item.get("html"), custom_fields={str(k): str(v) for k, v in custom.items()})
    return {"kind": kind, "title": title or item.get("url") or kind,
            "href": url_for("platform.module_item", course_id=course["id"], item_id=item_id)
            if kind == "ltiResourceLink" else url}


@bp.get("/courses/<int:course_id>/modules/items/<int:item_id>")
def module_item(course_id: int, item_id: int) -> ResponseReturnValue:
    course = _course_or_404(course_id)
    _may_view(course)
    item = store().content_item(item_id)
    if item is None or item["course_id"] != course_id or item["type"] != "ltiResourceLink":
        abort(404, "No such module item.")
    tool = _found(store().tool(item["tool_id"]), "tool")
    return render_template(
        "platform/launch.html", course=course, tool=tool, placement="module_item",
        title=item["title"] or tool["name"], options=None,
        frame_url=url_for("platform.launch_form", kind="courses", context_id=course_id,
                          tool_id=tool["id"], placement="module_item", item_id=item_id))


@bp.get("/api/lti/security/jwks")
def lti13_jwks() -> ResponseReturnValue:
    from .lti13 import PlatformKeys

    response = jsonify(PlatformKeys(store()).jwks())
    response.headers["Cache-Control"] = "max-age=300"
    return response


@bp.get("/<any(courses,accounts,users):kind>/<int:context_id>/external_content/success/"
        "external_tool_redirect")
def external_content_return(kind: str, context_id: int) -> ResponseReturnValue:
    """``launch_presentation_return_url``: shows ``lti_msg`` / ``lti_errormsg``."""
    return render_template("platform/returned.html", message=request.args.get("lti_msg"),
                           error=request.args.get("lti_errormsg"),
                           back=url_for("platform.course", course_id=context_id)
                           if kind == "courses" else url_for("platform.home"))


@bp.get("/inspector")
def inspector() -> ResponseReturnValue:
    return render_template("platform/inspector.html", launches=store().launches(),
                           tools={t["id"]: t for t in store().tools()},
                           users={p.id: p for p in store().people()})


@bp.get("/images/thumbnails/<int:user_id>.png")
def avatar(user_id: int) -> ResponseReturnValue:
    # A 1x1 transparent PNG: tools that show user_image get a real image URL.
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000105fe02fe0000000049454e44"
                        "ae426082")
    return Response(png, mimetype="image/png")


# -- tools ----------------------------------------------------------------------------------

@bp.get("/tools")
def tools() -> ResponseReturnValue:
    every = store().tools()
    lti13 = {t["id"]: store().lti13_tool(tool_id=t["id"]) for t in every}
    return render_template("platform/tools.html", tools=every, lti13=lti13,
                           placements=lti11.PLACEMENTS, privacy_levels=lti11.PRIVACY_LEVELS,
                           platform=platform_url())


@bp.post("/tools/lti13")
def add_lti13_tool() -> ResponseReturnValue:
    """Canvas's "+ LTI Key" with "Enter URL": an LTI 1.3 tool from its JSON configuration."""
    from .lti13 import tool_from_canvas_json

    config_url = (request.form.get("config_url") or "").strip()
    try:
        config = json.loads(fetch_config(config_url, accept="application/json"))
        tool_id, client_id, _ = store().add_lti13_tool(**tool_from_canvas_json(config))
    except (lti11.ConfigError, ValueError) as exc:
        flash(f"Could not install the LTI 1.3 tool: {exc}", "error")
        return redirect(url_for("platform.tools"))
    name = _found(store().tool(tool_id), "tool")["name"]
    flash(f"Installed {name} (LTI 1.3, client id {client_id}).", "ok")
    return redirect(url_for("platform.tools"))


def register_tool_from_xml(platform: PlatformStore, *, consumer_key: str,
                           shared_secret: str, xml: bytes | str | None = None,
                           config_url: str | None = None) -> int:
    """Register an LTI 1.1 tool from its XML (given, or fetched from ``config_url``)."""
    if xml is None:
        if not config_url:
            raise lti11.ConfigError("Give the configuration XML or its URL.")
        xml = fetch_config(config_url)
    config = lti11.parse_tool_xml(xml)
    return platform.add_tool(
        name=config.name, description=config.description, consumer_key=consumer_key,
        shared_secret=shared_secret, url=config.url, domain=config.domain,
        privacy_level=config.privacy_level, custom_fields=config.custom_fields,
        placements=config.placements, config_url=config_url)


def fetch_config(config_url: str, accept: str = "application/xml, text/xml") -> bytes:
    if not config_url.startswith(("http://", "https://")):
        raise lti11.ConfigError("The configuration URL must be http:// or https://.")
    try:
        response = requests.get(config_url, timeout=(5, 10), stream=True,
                                headers={"Accept": accept})
        data = response.raw.read(lti11.MAX_XML_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise lti11.ConfigError(f"Could not fetch {config_url}: {exc}") from None
    if response.status_code != 200:
        raise lti11.ConfigError(f"{config_url} answered HTTP {response.status_code}.")
    return data


@bp.post("/tools")
def add_tool() -> ResponseReturnValue:
    form = request.form
    key, secret = (form.get("consumer_key") or "").strip(), (form.get("shared_secret") or "")
    if not key or not secret:
        flash("A tool needs a consumer key and a shared secret.", "error")
        return redirect(url_for("platform.tools"))
    try:
        how = form.get("how", "manual")
        if how == "url":
            tool_id = register_tool_from_xml(store(), consumer_key=key, shared_secret=secret,
                                             config_url=(form.get("config_url") or "").strip())
        elif how == "xml":
            tool_id = register_tool_from_xml(store(), consumer_key=key, shared_secret=secret,
                                             xml=form.get("config_xml") or "")
        else:
            url = (form.get("url") or "").strip()
            name = (form.get("name") or "").strip()
            if not name or not url.startswith(("http://", "https://")):
                raise lti11.ConfigError("A tool needs a name and an http(s) launch URL.")
            placements = {p: {"enabled": "true", "text": name}
                          for p in form.getlist("placements") if p in lti11.PLACEMENTS}
            privacy = form.get("privacy_level", "public")
            if privacy not in lti11.PRIVACY_LEVELS:
                raise lti11.ConfigError("Unknown privacy level.")
            tool_id = store().add_tool(name=name, consumer_key=key, shared_secret=secret,
                                       url=url, privacy_level=privacy, placements=placements)
    except lti11.ConfigError as exc:
        flash(str(exc), "error")
        return redirect(url_for("platform.tools"))
    tool = _found(store().tool(tool_id), "tool")
    flash(f"Installed {tool['name']}.", "ok")
    return redirect(url_for("platform.tools"))


@bp.post("/tools/<int:tool_id>/delete")
def delete_tool(tool_id: int) -> ResponseReturnValue:
    store().remove_tool(tool_id)
    flash("Tool removed.", "ok")
    return redirect(url_for("platform.tools"))


# -- developer keys -------------------------------------------------------------------------

@bp.get("/developer_keys")
def developer_keys() -> ResponseReturnValue:
    from .canvas_api import KNOWN_SCOPES

    lifetime = current_app.config["TOKEN_LIFETIME"]
    return render_template("platform/developer_keys.html", keys=store().developer_keys(),
                           known_scopes=KNOWN_SCOPES,
                           token_lifetime=f"{lifetime:g} seconds" if lifetime else "forever")


@bp.post("/developer_keys")
def add_developer_key() -> ResponseReturnValue:
    form = request.form
    name = (form.get("name") or "").strip()
    uris = [u.strip() for u in (form.get("redirect_uris") or "").splitlines() if u.strip()]
    if not name or not uris or not all(u.startswith(("http://", "https://")) for u in uris):
        flash("A developer key needs a name and at least one http(s) redirect URI.", "error")
        return redirect(url_for("platform.developer_keys"))
    scopes = [s.strip() for s in (form.get("scopes") or "").splitlines() if s.strip()]
    key_id, _ = store().add_developer_key(name, uris, scopes=scopes,
                                          require_scopes=bool(form.get("require_scopes")))
    flash(f"Developer key {key_id} created.", "ok")
    return redirect(url_for("platform.developer_keys"))


# -- Basic Outcomes -------------------------------------------------------------------------

@bp.post("/api/lti/v1/tools/<int:tool_id>/grade_passback")
@bp.post("/api/lti/v1/tools/<int:tool_id>/ext_grade_passback")
def grade_passback(tool_id: int) -> ResponseReturnValue:
    tool = store().tool(tool_id)
    body = request.get_data(cache=False)
    try:
        if tool is None:
            raise lti11.OutcomeRefused(404, "No such tool.")
        lti11.verify_outcome_request(
            request.method, request.base_url, dict(request.headers), body, tool,
            lambda nonce, ttl: store().claim_outcome_nonce(tool["consumer_key"], nonce, ttl))
        outcome = lti11.parse_outcome_request(body)
    except lti11.OutcomeRefused as exc:
        log.warning("outcome refused: tool=%s status=%s %s", tool_id, exc.status, exc.message)
        return _pox(lti11.outcome_response(None, "failure", exc.message), exc.status)
    code, description, score = _apply_outcome(tool, outcome)
    return _pox(lti11.outcome_response(outcome, code, description, score=score), 200)


def _apply_outcome(tool: dict[str, Any], outcome: lti11.OutcomeRequest
                   ) -> tuple[str, str, float | None]:
    if outcome.operation not in ("replaceResult", "readResult", "deleteResult"):
        return "unsupported", f"{outcome.operation} is not supported", None
    target = store().read_sourcedid(tool["id"], outcome.sourcedid or "")
    if target is None:
        return "failure", "Invalid sourcedid", None
    assignment_id, user_id = target
    if outcome.operation == "readResult":
        grade = store().grade(assignment_id, user_id)
        score = grade["score"] if grade else None
        return "success", f"Result read for sourcedid {outcome.sourcedid}", score
    if outcome.operation == "deleteResult":
        store().delete_grade(assignment_id, user_id)
        return "success", f"Result deleted for sourcedid {outcome.sourcedid}", None
    score = None
    if outcome.score is not None and outcome.score.strip():
        try:
            score = float(outcome.score)
        except ValueError:
            return "failure", "Score is invalid", None
        if not 0.0 <= score <= 1.0:  # NaN fails this too
            return "failure", "Score must be between 0.0 and 1.0", None
    elif outcome.result_text is None and outcome.result_url is None:
        return "failure", "No score given", None
    store().set_grade(assignment_id, user_id, score, result_text=outcome.result_text,
                      result_url=outcome.result_url)
    log.info("grade: assignment=%s user=%s score=%s", assignment_id, user_id, score)
    return "success", f"Score for {outcome.sourcedid} is now {score}", None


def _pox(body: bytes, status: int) -> Response:
    return Response(body, status=status, mimetype="application/xml")
