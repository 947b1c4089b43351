"""The ``lti`` decorator keeps PyLTI's contract and fixes PyLTI's session problems."""

from __future__ import annotations

from flask import Flask

from conftest import KEY, LAUNCH_URL, SECRET, build_tool
from ltikit.errors import LTIException, LTINotInSessionException, LTIRoleException
from ltikit.flask import current_lti, lti
from ltikit.testing import Clock

BASE = "https://tool.example.edu"


def test_pylti_error_callback_gets_the_exception_kwargs_and_args(tmp_path, signed):
    app = build_tool(tmp_path)
    seen = {}

    def error(exception=None):
        seen.update(exception)
        return "custom error page"

    @app.route("/course/<int:course>")
    @lti(error=error, request="session", app=app)
    def course(course, lti):
        return "never"

    response = app.test_client().get("/course/7", base_url=BASE)
    assert isinstance(seen["exception"], LTINotInSessionException)
    assert seen["kwargs"] == {"course": 7}
    assert seen["args"] == ()
    assert response.get_data(as_text=True) == "custom error page"
    assert response.status_code == 401  # a bare error page is never a 200


def test_error_callback_response_with_its_own_status_is_kept(tmp_path):
    app = build_tool(tmp_path)

    @app.route("/r")
    @lti(error=lambda exception: ("go away", 418), request="session")
    def r(lti):
        return "never"

    assert app.test_client().get("/r", base_url=BASE).status_code == 418


def test_bare_decorator_is_request_any(tmp_path, signed):
    app = build_tool(tmp_path)

    @app.route("/bare", methods=["GET", "POST"])
    @lti
    def bare(lti):
        return f"bare {lti.user_id}"

    client = app.test_client()
    assert client.get("/bare", base_url=BASE).status_code == 401
    launch = signed(url=BASE + "/bare")
    assert client.open(**launch.for_flask()).status_code == 200
    assert client.get("/bare", base_url=BASE).get_data(as_text=True).startswith("bare ")


def test_role_refusal_is_403_and_stores_nothing(tmp_path, signed):
    app = build_tool(tmp_path)
    client = app.test_client()
    response = client.open(**signed(url=BASE + "/staff", roles="Learner").for_flask())
    assert response.status_code == 403
    assert "Not authorized." in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    # The same signed launch was not consumed: nothing was stored for the refused request.
    assert client.get("/page", base_url=BASE).status_code == 401


def test_no_roles_with_a_role_check_is_a_403_not_a_500(client, signed):
    response = client.open(**signed(url=BASE + "/staff", roles=None).for_flask())
    assert response.status_code == 403


def test_session_requests_recheck_the_role(tmp_path, signed):
    app = build_tool(tmp_path)
    client = app.test_client()
    assert client.open(**signed(roles="Learner").for_flask()).status_code == 200
    assert client.get("/page", base_url=BASE).status_code == 200
    assert client.get("/staff", base_url=BASE).status_code == 403


def test_pylti_members_of_the_lti_object(tmp_path, signed):
    app = build_tool(tmp_path)

    @app.route("/members", methods=["POST"])
    @lti(request="initial", app=app)
    def members(lti):
        return {"user_id": lti.user_id, "key": lti.key, "name": lti.name, "role": lti.role,
                "staff": lti.is_role("staff"), "student": lti.is_role("student"),
                "response_url": lti.response_url, "proxy": current_lti.user_id,
                "canvas_course": lti.canvas.course_id, "custom": dict(lti.custom),
                "version": lti.version}

    launch = signed(url=BASE + "/members", roles="Learner,Instructor",
                    lis_person_sourcedid="sis-42",
                    lis_outcome_service_url="https://lms.example.edu/outcomes",
                    lis_result_sourcedid="grade-me", custom_color="blue")
    data = app.test_client().open(**launch.for_flask()).get_json()
    assert data == {"user_id": "535fa085f22b4655f48cd5a36a9215f64c062838", "key": KEY,
                    "name": "sis-42", "role": "Learner,Instructor", "staff": True,
                    "student": True, "response_url": "https://lms.example.edu/outcomes",
                    "proxy": "535fa085f22b4655f48cd5a36a9215f64c062838",
                    "canvas_course": "10000000000001",
                    "custom": {"canvas_user_id": "10000000000042",
                               "canvas_course_id": "10000000000001",
                               "canvas_api_domain": "canvas.local",
                               "canvas_enrollment_state": "active", "color": "blue"},
                    "version": "1.1"}


def test_a_new_launch_replaces_everything_from_the_previous_one(client, signed):
    alice = signed(user_id="alice", lis_outcome_service_url="https://lms/o",
                   lis_result_sourcedid="alice-grade")
    assert client.open(**alice.for_flask()).status_code == 200
    assert client.get("/page", base_url=BASE).get_data(as_text=True) == \
        "page for alice sourcedid=alice-grade"
    bob = signed(user_id="bob")  # Bob is not graded: no sourcedid at all
    assert client.open(**bob.for_flask()).status_code == 200
    assert client.get("/page", base_url=BASE).get_data(as_text=True) == \
        "page for bob sourcedid=None"


def test_two_tabs_from_two_courses_keep_their_own_launch(tmp_path, signed):
    app = build_tool(tmp_path)

    @app.route("/tab", methods=["GET", "POST"])
    @lti(request="any")
    def tab(lti):
        return {"course": lti.context.id, "next": lti.url_for("tab"),
                "field": str(lti.hidden_field())}

    client = app.test_client()
    first = client.open(**signed(url=BASE + "/tab", context_id="course-A").for_flask())
    second = client.open(**signed(url=BASE + "/tab", context_id="course-B").for_flask())
    link_a, link_b = first.get_json()["next"], second.get_json()["next"]
    assert client.get(link_a, base_url=BASE).get_json()["course"] == "course-A"
    assert client.get(link_b, base_url=BASE).get_json()["course"] == "course-B"
    # Without an explicit id, the browser's most recent launch applies.
    assert client.get("/tab", base_url=BASE).get_json()["course"] == "course-B"
    assert 'type="hidden" name="ltikit_launch"' in first.get_json()["field"]


def test_launch_id_works_without_cookies_through_the_header_too(tmp_path, signed):
    app = build_tool(tmp_path)

    @app.route("/id", methods=["POST"])
    @lti(request="initial")
    def launch_id(lti):
        return lti.launch_id

    token = app.test_client().open(**signed(url=BASE + "/id").for_flask()) \
        .get_data(as_text=True)
    cookieless = app.test_client()
    assert cookieless.get("/page", base_url=BASE).status_code == 401
    assert cookieless.get("/page", base_url=BASE,
                          headers={"X-LTIKit-Launch": token}).status_code == 200
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert cookieless.get("/page", base_url=BASE,
                          headers={"X-LTIKit-Launch": forged}).status_code == 401


def test_launch_cookie_works_in_a_cross_site_iframe(client, signed):
    response = client.open(**signed().for_flask())
    cookie = response.headers["Set-Cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned"):
        assert attribute in cookie
    assert response.headers["Set-Cookie"].split(";")[0].count(".") == 1  # id.signature


def test_close_session_ends_the_launch(tmp_path, signed):
    app = build_tool(tmp_path)

    @app.route("/logout")
    @lti(request="session")
    def logout(lti):
        lti.close_session()
        return "bye"

    client = app.test_client()
    client.open(**signed().for_flask())
    assert client.get("/page", base_url=BASE).status_code == 200
    response = client.get("/logout", base_url=BASE)
    assert response.get_data(as_text=True) == "bye"
    assert "ltikit_launch=;" in response.headers["Set-Cookie"]
    assert client.get("/page", base_url=BASE).status_code == 401


def test_launches_expire(tmp_path, signed):
    clock = Clock()
    app = build_tool(tmp_path, clock=clock, LTIKIT_LAUNCH_LIFETIME=60)
    client = app.test_client()
    client.open(**signed().for_flask())
    clock.advance(59)
    assert client.get("/page", base_url=BASE).status_code == 200
    clock.advance(2)
    assert client.get("/page", base_url=BASE).status_code == 401


def test_unknown_request_type_fails_at_decoration_time():
    import pytest

    with pytest.raises(LTIException, match="Unknown request type"):
        lti(request="sometimes")


def test_pylti_apps_without_explicit_setup_work_from_config(tmp_path, signed):
    app = Flask("plain", instance_path=str(tmp_path / "instance"))
    app.secret_key = "k"
    app.config["PYLTI_CONFIG"] = {"consumers": {KEY: {"secret": SECRET}}}

    @app.route("/launch", methods=["POST"])
    @lti(request="initial", app=app)
    def launch(lti):
        return "ok"

    assert app.test_client().open(**signed(url=LAUNCH_URL).for_flask()).status_code == 200
    assert (tmp_path / "instance" / "ltikit.sqlite3").exists()


def test_missing_secret_key_is_a_clear_configuration_error(tmp_path, signed, caplog):
    app = Flask("nokey", instance_path=str(tmp_path / "instance"))
    app.config["PYLTI_CONFIG"] = {"consumers": {KEY: {"secret": SECRET}}}

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return "ok"

    response = app.test_client().open(**signed(url=LAUNCH_URL).for_flask())
    assert response.status_code == 500
    assert "SECRET_KEY" in response.get_data(as_text=True)


def test_role_exception_class_names_match_pylti():
    assert LTIRoleException().message == "Not authorized."
    assert LTINotInSessionException().message == "Session expired or unavailable"


def test_after_canvas_authorization_the_user_never_lands_on_another_site(tmp_path, signed):
    """Browsers read ``/\\evil.example`` as ``//evil.example``: a page reached at such a
    path must not become the place the Canvas authorization callback sends the user (with
    their launch id in the URL)."""
    from sqlalchemy import select

    from ltikit.crypto import SecretBox
    from ltikit.storage import tables

    app = build_tool(tmp_path, LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key(),
                     LTIKIT_CANVAS_INSTANCES={"canvas.local": {
                         "client_id": "10000000000001", "client_secret": "s",
                         "scopes": []}})

    @app.route("/<path:rest>")
    @lti(request="session", app=app)
    def anything(lti, rest):
        return lti.canvas_api.get_current_user().name

    client = app.test_client()
    assert client.open(**signed().for_flask()).status_code == 200
    for path in ("/%5Cevil.example/x", "/%5C%5Cevil.example", "/%09/evil.example"):
        answer = client.get(path, base_url=BASE)
        assert answer.status_code == 302 and "/login/oauth2/auth?" in answer.headers["Location"]
    with app.extensions["ltikit"].storage.engine.connect() as conn:
        kept = conn.execute(select(tables.oauth_states.c.return_to)).scalars().all()
    assert kept == ["/", "/", "/"]
