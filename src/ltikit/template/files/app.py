"""__TOOL_TITLE__: an LTI tool for any LMS, with the Canvas API where it is launched from Canvas.

Made with ``ltikit new``.  The flow is the old UCF Open template's, done safely and for
every platform (Canvas, Moodle, Blackboard, D2L, ...):

1. The platform launches ``/launch`` over LTI 1.1 or 1.3 (staff only by default,
   ``LAUNCH_ROLE``); ltikit checks the signature, the timestamp and the nonce (1.1) or the
   OIDC login and the id_token (1.3), and keeps the launch on the server.
2. ``/`` shows who launched, from which course, with which role, and what the platform
   offers.  Launched from the Canvas this tool has an API key for (``BASE_URL``,
   ``OAUTH2_ID``, ``OAUTH2_KEY``), it also shows the user's Canvas profile through
   ``canvasapi``: the first time, ltikit sends the user through Canvas's authorization
   (with a ``state`` bound to the launch); tokens are stored encrypted, per Canvas user,
   and refreshed before they expire.
3. LTI 1.3 only: ``/teacher`` lists the course roster (Names and Role Provisioning) and
   sends a test grade (Assignment and Grade Services); ``/deep-link`` answers the
   platform's content selection (Canvas's link selection, Moodle's "Select content") with
   one item (Deep Linking).
4. Installing it: a platform registers it from one URL (LTI Dynamic Registration,
   ``/lti13/register``, through a link from ``python manage.py registration-link``), with
   the placements, services and content selection that ``tool_configuration`` below
   builds from the settings; ``/lti/config.xml`` (1.1) and ``/lti/config.json`` (Canvas's
   developer key JSON) say the same for installs by hand.

Run ``python manage.py upgrade`` once, then ``python manage.py run``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, redirect, render_template, request, url_for

from ltikit.errors import Reason
from ltikit.flask import LTIKit, lti
from ltikit.lti13.ags import LineItem, Score
from ltikit.lti13.deep_linking import LtiResourceLink
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


def error(exception: dict[str, Any] | None = None):
    """ltikit's (and PyLTI's) error callback: a page with the refusal's real status."""
    exc = (exception or {}).get("exception")
    status = getattr(exc, "status", 500)
    message = getattr(exc, "message", "Something went wrong.")
    return render_template(
        "error.html", message=message, status=status,
        # Only a role refusal says who the tool is for; a 403 can mean other things.
        role_refused=getattr(exc, "reason", None) == Reason.ROLE,
        # A link that does work (ltikit never offers one that replays a used login).
        relaunch_url=getattr(exc, "relaunch_url", None)), status



def create_app(config: dict[str, Any] | None = None) -> Flask:
    if config is None:
        load_dotenv_file()
        config = flask_config()
    app = Flask(__name__)
    app.config.update(config)
    _logging(app)
    if app.config["LTIKIT_AUTO_UPGRADE"]:  # production: AUTO_UPGRADE=false, manage.py upgrade
        from manage import upgrade

        upgrade(app.config["LTIKIT_DATABASE_URL"], quiet=True)
    # Every @lti route below takes the launch role and the error page from here.
    kit = LTIKit(app, error=error, role=app.config["LAUNCH_ROLE"],
                 tool_configuration=tool_configuration(app.config))

    @app.before_request
    def registration_at_the_wrong_url():
        # A platform given the tool's launch URL instead of its registration URL (Moodle's
        # "Add LTI Advantage" with the tool's address) opens it with openid_configuration:
        # send it on to the registration URL rather than refusing a launch.
        if request.path in ("/", "/launch") and request.method == "GET" and \
                "openid_configuration" in request.args:
            return redirect(url_for("ltikit_lti13_register", **request.args))
        return None

    # GET too: a launch verified here for "/launch?..." (another query) comes back to it
    # as a single-use hand-off (LTIKIT_LTI13_REDIRECT_URI, see README: One redirect URI).
    @app.route("/launch", methods=["GET", "POST"])
    @lti(request="initial")
    def launch(lti):
        if lti.user.id:
            record_launch(kit.storage.engine, platform_of(lti), lti.user.id, lti.user.name)
        # The launch id travels in the URL too, so the tool works where the browser
        # blocks its cookie inside the platform's iframe.
        return redirect(lti.url_for("index"))

    @app.route("/")
    @lti(request="session")
    def index(lti):
        profile = course = None
        if lti.has_canvas_api:  # from the Canvas this tool has an API key for
            canvas = lti.canvas_api  # no token yet: Canvas's authorization, then back here
            profile = canvas.get_current_user().get_profile()
            course = canvas.get_course(lti.canvas.course_id) if lti.canvas.course_id else None
        launch = lti.launch
        return render_template(
            "index.html", lti=lti, profile=profile, course=course,
            platform_name=platform_name(lti), roles=role_names(lti),
            # Canvas launched, but not one this tool has an API developer key for.
            canvas_unconfigured=profile is None and lti.canvas is not None
            and bool(lti.canvas.api_domain),
            roster=launch.nrps_endpoint is not None,
            grades=launch.ags_endpoint is not None or launch.outcome is not None)

    @app.route("/logout", methods=["POST"])
    @lti(request="session")
    def logout(lti):
        if lti.has_canvas_api:
            lti.canvas_logout()
        return render_template("signed_out.html", lti=lti, next_url=lti.url_for("index"))

    # -- LTI 1.3 only: the roster (NRPS), a test grade (AGS), content for a course page
    # (deep linking).  None of it needs Canvas: these are LTI Advantage services.
    @app.route("/teacher")
    @lti(request="session")
    def teacher(lti):
        if lti.version != "1.3" or lti.launch.nrps_endpoint is None:
            return render_template("error.html", status=404, message=(
                "The roster and test grades need an LTI 1.3 launch from a course whose "
                "platform offers this tool the names and roles service (Canvas: the "
                "developer key's scopes; Moodle: the tool's \"IMS LTI Names and Role "
                "Provisioning\" setting).")), 404
        members = list(lti.nrps.members(limit=app.config["ROSTER_PAGE_SIZE"]))
        learners = [m for m in members if m.roles.has("Learner")]
        sent = request.args.get("sent")
        return render_template("teacher.html", lti=lti, members=members, learners=learners,
                               sent=next((m.name for m in members if m.user_id == sent), sent),
                               can_grade=lti.launch.ags_endpoint is not None and
                               lti.launch.ags_endpoint.lineitems is not None)

    @app.route("/teacher/test-grade", methods=["POST"])
    @lti(request="session")
    def test_grade(lti):
        try:
            score = float(request.form.get("score", ""))
        except ValueError:
            score = -1.0
        user_id = request.form.get("user_id", "")
        if not 0 <= score <= 10 or not user_id:
            return render_template("error.html", status=400,
                                   message="Choose a student and a score from 0 to 10."), 400
        ags = lti.ags
        column = ags.find_or_create_line_item(LineItem(
            label=f"{app.config['TOOL_TITLE']}: test grade", score_maximum=10,
            resource_id="template-test-grade"))
        ags.post_score(Score(user_id=user_id, score_given=score, score_maximum=10,
                             comment="A test grade"), column.id)
        return redirect(lti.url_for("teacher", sent=user_id))

    # GET too: the platform posts the id_token to /launch (the one redirect URI), which
    # hands the launch on to this page with a redirect.
    @app.route("/deep-link", methods=["GET", "POST"])
    @lti(request="initial",
         message_types=("LtiDeepLinkingRequest",))
    def deep_link(lti):
        return render_template("deep_link.html", lti=lti)

    @app.route("/deep-link/return", methods=["POST"])
    @lti(request="session")
    def deep_link_return(lti):
        return lti.deep_link_response(
            [LtiResourceLink(url=f"{tool_base_url()}/launch", title=app.config["TOOL_TITLE"],
                             text=app.config["TOOL_DESCRIPTION"])],
            message=f"{app.config['TOOL_TITLE']} was added.")

    def tool_base_url() -> str:
        # This request's public URL (X-Forwarded-* when TRUSTED_PROXIES is set) without the
        # path, so configurations advertise https:// URLs behind a TLS proxy.
        return kit.public_url(request).removesuffix(request.path)

    @app.route("/lti/config.xml")
    def lti_config():
        xml = render_template("lti.xml", **lti11_xml_values(app.config, tool_base_url()))
        return Response(xml, mimetype="application/xml")

    @app.route("/lti/config.json")
    def lti13_config():
        """Canvas's LTI 1.3 developer key JSON (Admin > Developer Keys > + LTI Key > Paste
        JSON), from the same settings as the 1.1 XML."""
        return canvas_developer_key(app.config, tool_base_url())

    @app.errorhandler(404)
    def not_found(_exc):
        return render_template("error.html", message="There is no such page.",
                               status=404), 404

    @app.errorhandler(500)
    def server_error(_exc):
        return render_template("error.html", message="Something went wrong on our side.",
                               status=500), 500

    return app


def _logging(app: Flask) -> None:
    level = getattr(logging, app.config.get("LOG_LEVEL") or "INFO", logging.INFO)
    handler: logging.Handler = logging.FileHandler(app.config["LOG_FILE"]) \
        if app.config.get("LOG_FILE") else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("ltikit", app.name):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.handlers:
            logger.addHandler(handler)
