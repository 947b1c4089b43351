"""__TOOL_TITLE__: an LTI tool for any LMS, with the Canvas API where it is launched from Canvas
(FastAPI, made with ``ltikit new --framework fastapi``).

The same tool as the Flask template, page for page and setting for setting:

1. The platform launches ``/launch`` over LTI 1.1 or 1.3 (staff only by default,
   ``LAUNCH_ROLE``); ltikit checks the launch and keeps it on the server.
2. ``/`` shows who launched, from which course, with which role, and what the platform
   offers; launched from the Canvas this tool has an API key for, also the user's Canvas
   profile (``canvasapi`` in a worker thread; the first time, Canvas's authorization).
3. LTI 1.3: ``/teacher`` lists the roster and sends a test grade; ``/deep-link`` answers
   content selection with one item.
4. A platform installs it from one URL (LTI Dynamic Registration, ``/lti13/register``).

Every call to a platform or to Canvas is awaited in a worker thread: a slow platform holds
a thread, never the event loop.  Run ``python manage.py upgrade`` once, then
``python manage.py run`` (uvicorn).
"""

# No "from __future__ import annotations": FastAPI reads the views' annotations, which name
# objects made in create_app (kit, session).
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ltikit.errors import Reason
from ltikit.lti13.ags import LineItem, Score
from ltikit.lti13.deep_linking import LtiResourceLink
from ltikit.starlette import LTI, LTIKit
from models import record_launch
from settings import flask_config, load_dotenv_file
from tool_setup import (
    canvas_developer_key,
    lti11_xml_values,
    platform_name,
    platform_of,
    role_names,
    tool_configuration,
)

HERE = Path(__file__).resolve().parent


def create_app(config: dict[str, Any] | None = None) -> FastAPI:
    if config is None:
        load_dotenv_file()
        config = flask_config()  # the same settings as the Flask app (settings.py)
    _logging(config)
    if config["LTIKIT_AUTO_UPGRADE"]:  # production: AUTO_UPGRADE=false, manage.py upgrade
        from manage import upgrade

        upgrade(config["LTIKIT_DATABASE_URL"], quiet=True)
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.kit.aclose()  # the worker's connections to platforms

    app = FastAPI(title=config["TOOL_TITLE"], docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    templates = Jinja2Templates(directory=HERE / "templates")

    def page(request: Request, name: str, code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, {"config": config, **context},
                                           status_code=code)

    def error(exception: dict[str, Any] | None = None) -> Response:
        """ltikit's (and PyLTI's) error callback: a page with the refusal's real status."""
        exc = (exception or {}).get("exception")
        request = (exception or {}).get("kwargs", {})["request"]
        return page(request, "error.html", getattr(exc, "status", 500),
                    message=getattr(exc, "message", "Something went wrong."),
                    status=getattr(exc, "status", 500),
                    role_refused=getattr(exc, "reason", None) == Reason.ROLE,
                    relaunch_url=getattr(exc, "relaunch_url", None))

    # Every protected route below takes the launch role and the error page from here.
    kit = LTIKit(app, config=config, secret_key=config["SECRET_KEY"], error=error,
                 role=config["LAUNCH_ROLE"], tool_configuration=tool_configuration(config))
    app.state.kit = kit
    session = kit.launch(request="session")

    @app.middleware("http")
    async def registration_at_the_wrong_url(request: Request, call_next: Any) -> Response:
        # A platform given the tool's launch URL instead of its registration URL (Moodle's
        # "Add LTI Advantage" with the tool's address) opens it with openid_configuration:
        # send it on to the registration URL rather than refusing a launch.
        if request.url.path in ("/", "/launch") and request.method == "GET" and \
                "openid_configuration" in request.query_params:
            target = request.url_for("ltikit_lti13_register").include_query_params(
                **request.query_params)
            return RedirectResponse(str(target), 302)
        response: Response = await call_next(request)
        return response

    # GET too: a launch verified here for "/launch?..." (another query) comes back to it
    # as a single-use hand-off (LTIKIT_LTI13_REDIRECT_URI, see README: One redirect URI).
    @app.api_route("/launch", methods=["GET", "POST"])
    async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]) -> Response:
        if lti.user.id:
            await run_in_threadpool(record_launch, kit.store.engine, platform_of(lti),
                                    lti.user.id, lti.user.name)
        # The launch id travels in the URL too, so the tool works where the browser
        # blocks its cookie inside the platform's iframe.
        return RedirectResponse(lti.url_for("index"), 302)

    @app.get("/")
    async def index(request: Request, lti: Annotated[LTI, Depends(session)]) -> Response:
        profile = course = None
        if lti.has_canvas_api:  # from the Canvas this tool has an API key for
            course_id = lti.canvas.course_id if lti.canvas else None
            # No token yet: Canvas's authorization, then back here.
            profile, course = await lti.in_canvas(lambda canvas: (
                canvas.get_current_user().get_profile(),
                canvas.get_course(course_id) if course_id else None))
        launch = lti.launch
        return page(request, "index.html", lti=lti, profile=profile, course=course,
                    platform_name=platform_name(lti), roles=role_names(lti),
                    canvas_unconfigured=profile is None and lti.canvas is not None
                    and bool(lti.canvas.api_domain),
                    roster=launch.nrps_endpoint is not None,
                    grades=launch.ags_endpoint is not None or launch.outcome is not None)

    @app.post("/logout")
    async def logout(request: Request, lti: Annotated[LTI, Depends(session)]) -> Response:
        if lti.has_canvas_api:
            await lti.canvas_logout()
        return page(request, "signed_out.html", lti=lti, next_url=lti.url_for("index"))

    # -- LTI 1.3 only: the roster (NRPS), a test grade (AGS), content for a course page
    # (deep linking).  None of it needs Canvas: these are LTI Advantage services.
    @app.get("/teacher")
    async def teacher(request: Request, lti: Annotated[LTI, Depends(session)]) -> Response:
        if lti.version != "1.3" or lti.launch.nrps_endpoint is None:
            return page(request, "error.html", 404, status=404, message=(
                "The roster and test grades need an LTI 1.3 launch from a course whose "
                "platform offers this tool the names and roles service (Canvas: the "
                "developer key's scopes; Moodle: the tool's \"IMS LTI Names and Role "
                "Provisioning\" setting)."))
        members = await lti.nrps.members(limit=config["ROSTER_PAGE_SIZE"])
        learners = [m for m in members if m.roles.has("Learner")]
        sent = request.query_params.get("sent")
        return page(request, "teacher.html", lti=lti, members=members, learners=learners,
                    sent=next((m.name for m in members if m.user_id == sent), sent),
                    can_grade=lti.launch.ags_endpoint is not None and
                    lti.launch.ags_endpoint.lineitems is not None)

    @app.post("/teacher/test-grade")
    async def test_grade(request: Request, lti: Annotated[LTI, Depends(session)]) -> Response:
        form = await request.form()
        try:
            score = float(str(form.get("score", "")))
        except ValueError:
            score = -1.0
        user_id = str(form.get("user_id", ""))
        if not 0 <= score <= 10 or not user_id:
            return page(request, "error.html", 400, status=400,
                        message="Choose a student and a score from 0 to 10.")
        column = await lti.ags.find_or_create_line_item(LineItem(
            label=f"{config['TOOL_TITLE']}: test grade", score_maximum=10,
            resource_id="template-test-grade"))
        await lti.ags.post_score(Score(user_id=user_id, score_given=score, score_maximum=10,
                                       comment="A test grade"), column.id)
        return RedirectResponse(lti.url_for("teacher", sent=user_id), 303)

    # GET too: the platform posts the id_token to /launch (the one redirect URI), which
    # hands the launch on to this page with a redirect.
    @app.api_route("/deep-link", methods=["GET", "POST"])
    async def deep_link(request: Request, lti: Annotated[LTI, Depends(kit.launch(
            request="initial", message_types=("LtiDeepLinkingRequest",)))]) -> Response:
        return page(request, "deep_link.html", lti=lti)

    @app.post("/deep-link/return")
    async def deep_link_return(request: Request,
                               lti: Annotated[LTI, Depends(session)]) -> Response:
        return await lti.deep_link_response(
            [LtiResourceLink(url=f"{tool_base_url(request)}/launch",
                             title=config["TOOL_TITLE"], text=config["TOOL_DESCRIPTION"])],
            message=f"{config['TOOL_TITLE']} was added.")

    def tool_base_url(request: Request) -> str:
        # This request's public URL (X-Forwarded-* when TRUSTED_PROXIES is set) without the
        # path, so configurations advertise https:// URLs behind a TLS proxy.
        return kit.public_url(request).removesuffix(request.url.path)

    @app.get("/lti/config.xml")
    async def lti_config(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "lti.xml", lti11_xml_values(config, tool_base_url(request)),
            media_type="application/xml")

    @app.get("/lti/config.json")
    async def lti13_config(request: Request) -> Response:
        """Canvas's LTI 1.3 developer key JSON, from the same settings as the 1.1 XML."""
        return JSONResponse(canvas_developer_key(config, tool_base_url(request)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return page(request, "error.html", 404, message="There is no such page.",
                        status=404)
        return page(request, "error.html", exc.status_code, status=exc.status_code,
                    message=str(exc.detail))

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        logging.getLogger("tool").exception("unhandled error")
        return page(request, "error.html", 500, message="Something went wrong on our side.",
                    status=500)

    return app


def _logging(config: dict[str, Any]) -> None:
    level = getattr(logging, config.get("LOG_LEVEL") or "INFO", logging.INFO)
    handler: logging.Handler = logging.FileHandler(config["LOG_FILE"]) \
        if config.get("LOG_FILE") else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("ltikit", "tool"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.handlers:
            logger.addHandler(handler)
