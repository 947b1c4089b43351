"""LTI Advantage services from an ltikit tool against the local platform, over real HTTP:
a student's grade through AGS, the roster through NRPS, line items managed by the tool, and
service tokens requested once per scope set per expiry.
"""

from __future__ import annotations

import dataclasses
import re

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, request

from browser import serve
from ltikit.crypto import SecretBox
from ltikit.flask import LTIKit, lti
from ltikit.lti13 import Registrations
from ltikit.lti13.ags import LineItem, Score
from ltikit.lti13.services import CLIENT_ASSERTION_TYPE, ServiceError, ServiceTokens
from ltikit.platform import DevPlatform
from ltikit.testing.platform import PlatformUser

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCOPES = [AGS + "lineitem", AGS + "result.readonly", AGS + "score", NRPS]


def service_tool(tmp_path) -> Flask:
    app = Flask("services", instance_path=str(tmp_path / "tool"))
    app.config.update(SECRET_KEY="tool-secret", LTIKIT_ENCRYPTION_KEYS=SecretBox.generate_key())
    LTIKit(app)

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"<p id=launch>{lti.launch_id}</p><p id=user>{lti.user.name}</p>"

    @app.route("/grade", methods=["POST"])
    @lti(request="session")
    def grade(lti):
        return f"sent={lti.post_grade(float(request.form['score']), result_text='Well done')}"

    @app.route("/read")
    @lti(request="session")
    def read(lti):
        return f"grade={lti.read_grade()}"

    @app.route("/forget", methods=["POST"])
    @lti(request="session")
    def forget(lti):
        lti.delete_grade()
        return "deleted"

    @app.route("/roster")
    @lti(request="session", role="staff")
    def roster(lti):
        members = list(lti.nrps.members(limit=int(request.args.get("limit", 5))))
        return "\n".join(f"{m.name}|{' '.join(m.role_uris)}" for m in members)

    @app.route("/columns", methods=["POST"])
    @lti(request="session", role="staff")
    def columns(lti):
        ags = lti.ags
        made = ags.find_or_create_line_item(LineItem(label="Chapter 1 quiz", score_maximum=20,
                                                     resource_id="chapter-1", tag="quiz"))
        again = ags.find_or_create_line_item(LineItem(label="Chapter 1 quiz", score_maximum=20,
                                                      resource_id="chapter-1", tag="quiz"))
        student = request.form["student"]
        ags.post_score(Score(user_id=student, score_given=15, score_maximum=20,
                             comment="15 of 20"), made.id)
        results = list(ags.results(made.id))
        return f"{made.id == again.id}|{made.label}|" + ",".join(
            f"{r.user_id}:{r.result_score}/{r.result_maximum}" for r in results)

    return app


def launch13(user: PlatformUser, tool_id: int, course: int, **query: str):
    """(launch id, tool URL) of an LTI 1.3 launch of the service tool by ``user``."""
    page = user.launch13(tool_id, course, **query)
    assert page.status_code == 200, page.text
    return re.search(r"<p id=launch>([^<]+)</p>", page.text).group(1), page.url.rsplit("/", 1)[0]


@pytest.fixture
def setup(tmp_path):
    yield from _setup(tmp_path)


@pytest.fixture
def moodle(tmp_path):
    """The local platform answering AGS as Moodle 4.5 does (SERVICE_QUIRKS="moodle")."""
    yield from _setup(tmp_path, SERVICE_QUIRKS="moodle")


def _setup(tmp_path, **config):
    app = service_tool(tmp_path)
    with DevPlatform(tmp_path / "p.sqlite3", PLATFORM_STORAGE=False, **config) as platform, \
            serve(app) as tool_url:
        LTIKit.state(app).lti13.tool_keys().generate()
        tool_id, client_id, deployment_id = platform.add_lti13_tool(
            "Quiz", oidc_initiation_url=f"{tool_url}/lti13/login",
            target_link_uri=f"{tool_url}/launch", scopes=SCOPES,
            public_jwk_url=f"{tool_url}/lti13/jwks",
            placements={"course_navigation": {"enabled": "true", "text": "Quiz"}})
        Registrations(LTIKit.state(app).storage.engine).add(
            **platform.lti13_registration(client_id), deployments=(deployment_id,))
        yield platform, tool_id, tool_url, app


def test_a_student_grade_goes_through_ags_to_the_gradebook(setup):
    platform, tool_id, tool_url, _ = setup
    course = platform.course_id("BIO101")
    assignment = platform.add_assignment(course, tool_id, "Quiz 1", points_possible=10)
    student = PlatformUser(platform, "student")
    launch_id, _ = launch13(student, tool_id, course, placement="assignment",
                            assignment_id=str(assignment))
    sent = student.session.post(f"{tool_url}/grade", data={"score": "0.85",
                                                           "ltikit_launch": launch_id})
    assert sent.text == "sent=True"
    grade = platform.store.grade(assignment, student.user["id"])
    assert grade["score"] == pytest.approx(0.85) and grade["result_text"] == "Well done"
    assert grade["activity_progress"] == "Completed"
    # A second grade: the same token serves it (one token per scope set per expiry).
    student.session.post(f"{tool_url}/grade", data={"score": "0.9", "ltikit_launch": launch_id})
    assert platform.store.grade(assignment, student.user["id"])["score"] == pytest.approx(0.9)
    assert platform.count("grant:client_credentials") == 1


def test_read_grade_reads_the_ags_result_and_delete_grade_says_ags_has_none(setup):
    """The same grading calls on both versions: on 1.3, read_grade is the user's AGS
    result; delete_grade is refused plainly (AGS has no delete), not with 1.1 advice."""
    platform, tool_id, tool_url, _ = setup
    course = platform.course_id("BIO101")
    assignment = platform.add_assignment(course, tool_id, "Quiz 3", points_possible=10)
    student = PlatformUser(platform, "student")
    launch_id, _ = launch13(student, tool_id, course, placement="assignment",
                            assignment_id=str(assignment))
    read = {"ltikit_launch": launch_id}
    assert student.session.get(f"{tool_url}/read", params=read).text == "grade=None"
    student.session.post(f"{tool_url}/grade", data={"score": "0.6", **read})
    assert student.session.get(f"{tool_url}/read", params=read).text == "grade=0.6"
    refused = student.session.post(f"{tool_url}/forget", data=read)
    assert refused.status_code == 502 and "no_ags_delete" in refused.text
    assert "NotReady" in refused.text


def test_a_launch_outside_an_assignment_cannot_take_a_grade(setup):
    platform, tool_id, tool_url, _ = setup
    course = platform.course_id("BIO101")
    student = PlatformUser(platform, "student")
    launch_id, _ = launch13(student, tool_id, course)
    refused = student.session.post(f"{tool_url}/grade", data={"score": "0.5",
                                                              "ltikit_launch": launch_id})
    assert refused.status_code == 502 and "no_lineitem" in refused.text


def test_the_roster_lists_every_member_across_pages(setup):
    platform, tool_id, tool_url, _ = setup
    course = platform.course_id("BIO101")
    teacher = PlatformUser(platform, "teacher")
    launch_id, _ = launch13(teacher, tool_id, course)
    roster = teacher.session.get(f"{tool_url}/roster", params={"ltikit_launch": launch_id,
                                                                "limit": "4"})
    assert roster.status_code == 200, roster.text
    names = [line.split("|")[0] for line in roster.text.splitlines()]
    total, members = platform.store.course_users(course)
    assert sorted(names) == sorted(m["name"] for m in members) and len(names) == total > 8
    assert any("membership#Instructor" in line and line.startswith("Terry Teacher")
               for line in roster.text.splitlines())


def test_the_tool_manages_its_line_items_and_reads_results(setup):
    platform, tool_id, tool_url, _ = setup
    course = platform.course_id("BIO101")
    teacher = PlatformUser(platform, "teacher")
    student_id = platform.user("student")["lti_id"]
    launch_id, _ = launch13(teacher, tool_id, course)
    answer = teacher.session.post(f"{tool_url}/columns", data={"ltikit_launch": launch_id,
                                                               "student": student_id})
    assert answer.text == f"True|Chapter 1 quiz|{student_id}:15.0/20.0", answer.text
    column = [a for a in platform.store.assignments(course) if a["name"] == "Chapter 1 quiz"]
    assert len(column) == 1 and column[0]["points_possible"] == 20  # in the gradebook
    assert platform.store.grade(column[0]["id"], platform.user("student")["id"])["score"] == 0.75
    # Line items, a score and results: one token, for every AGS scope the launch granted.
    assert platform.count("grant:client_credentials") == 1


def test_a_token_the_platform_no_longer_accepts_is_replaced_once(setup):
    platform, tool_id, tool_url, _ = setup
    course = platform.course_id("BIO101")
    assignment = platform.add_assignment(course, tool_id, "Quiz 2")
    student = PlatformUser(platform, "student")
    launch_id, _ = launch13(student, tool_id, course, placement="assignment",
                            assignment_id=str(assignment))
    assert student.session.post(f"{tool_url}/grade", data={
        "score": "0.5", "ltikit_launch": launch_id}).text == "sent=True"
    platform.expire_service_tokens()  # the platform drops it before the tool expected
    assert student.session.post(f"{tool_url}/grade", data={
        "score": "0.6", "ltikit_launch": launch_id}).text == "sent=True"
    assert platform.count("grant:client_credentials") == 2


def test_the_platform_enforces_scopes_keys_and_single_use_assertions(setup):
    platform, tool_id, _, app = setup
    course = platform.course_id("BIO101")
    app_state = LTIKit.state(app)
    keys = app_state.lti13.tool_keys()
    registration = app_state.lti13.registrations.get(platform.issuer, platform.store.lti13_tool(
        tool_id=tool_id)["client_id"])
    tokens = ServiceTokens(app_state.storage.engine, keys, keys.box)
    score_only = tokens.token(registration, [AGS + "score"])
    listing = requests.get(f"{platform.url}/api/lti/courses/{course}/line_items", timeout=10,
                           headers={"Authorization": f"Bearer {score_only}"})
    assert listing.status_code == 401 and listing.json() == {"errors": {
        "type": "unauthorized", "message": "Insufficient permissions"}}
    assert requests.get(f"{platform.url}/api/lti/courses/{course}/names_and_roles",
                        headers={"Authorization": "Bearer forged"}, timeout=10).status_code == 401
    # A scope the developer key does not grant is refused.
    with pytest.raises(ServiceError):
        tokens.token(registration, ["https://canvas.instructure.com/lti/account_lookup/scope/show"])
    # The same signed assertion twice: the second is refused (jti is single use).
    assertion = keys.sign({"iss": registration.client_id, "sub": registration.client_id,
                           "aud": registration.token_url, "iat": 1, "exp": 2**31, "jti": "j-1"})
    form = {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion, "scope": AGS + "score"}
    assert requests.post(registration.token_url, data=form, timeout=10).status_code == 200
    assert requests.post(registration.token_url, data=form, timeout=10).status_code == 400
    # An assertion signed by another key is refused.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"iss": registration.client_id, "sub": registration.client_id,
                         "aud": registration.token_url, "iat": 1, "exp": 2**31, "jti": "j-2"},
                        other, algorithm="RS256", headers={"kid": keys.signing_key()[0]})
    assert requests.post(registration.token_url, timeout=10, data={
        **form, "client_assertion": forged}).status_code == 401


def test_workers_needing_a_token_at_once_share_one_grant(setup, tmp_path):
    """Eight threads, each with its own ServiceTokens and engine (as worker processes
    have), ask for the same scopes at the same moment: the platform grants one token."""
    import threading

    from ltikit.storage import SQLStorage

    platform, tool_id, _, app = setup
    state = LTIKit.state(app)
    registration = state.lti13.registrations.get(platform.issuer, platform.store.lti13_tool(
        tool_id=tool_id)["client_id"])
    url = str(state.storage.engine.url)
    barrier, tokens, errors = threading.Barrier(8), [], []

    def worker():
        try:
            engine = SQLStorage(url).engine
            keys = type(state.lti13.tool_keys())(engine, state.lti13.tool_keys().box)
            service = ServiceTokens(engine, keys, keys.box)
            barrier.wait()
            tokens.append(service.token(registration, [AGS + "score", AGS + "lineitem"]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(tokens) == 8 and len(set(tokens)) == 1
    assert platform.count("grant:client_credentials") == 1


def _services(platform, tool_id, app):
    """The AGS and NRPS clients of a teacher launch, outside a request (as a job would)."""
    from ltikit.lti13.ags import AssignmentGradeService
    from ltikit.lti13.nrps import NamesRoleService

    course = platform.course_id("BIO101")
    teacher = PlatformUser(platform, "teacher")
    launch_id, _ = launch13(teacher, tool_id, course)
    state = LTIKit.state(app)
    launch = state.launches.resume(launch_id).launch
    client = state.lti13.service_client(launch)
    return (AssignmentGradeService(client, launch.ags_endpoint),
            NamesRoleService(client, launch.nrps_endpoint), course)


def test_line_items_are_updated_found_and_deleted(setup):
    platform, tool_id, _, app = setup
    ags, _, course = _services(platform, tool_id, app)
    first = ags.create_line_item(LineItem(label="Essay", score_maximum=50, tag="essay",
                                          resource_link_id="link-1"))
    ags.create_line_item(LineItem(label="Lab", score_maximum=5, resource_id="lab"))
    assert [i.label for i in ags.line_items(tag="essay")] == ["Essay"]
    assert [i.label for i in ags.line_items(resource_link_id="link-1")] == ["Essay"]
    assert len(list(ags.line_items(limit=1))) == 2  # two pages of one
    changed = ags.update_line_item(LineItem(id=first.id, label="Long essay",
                                            score_maximum=60, tag="essay"))
    assert (changed.label, changed.score_maximum) == ("Long essay", 60)
    assert ags.line_item(first.id).label == "Long essay"
    assert any(a["name"] == "Long essay" and a["points_possible"] == 60
               for a in platform.store.assignments(course))
    ags.delete_line_item(first.id)
    assert [i.label for i in ags.line_items()] == ["Lab"]
    with pytest.raises(ServiceError) as gone:
        ags.line_item(first.id)
    assert gone.value.http_status == 404


def test_scores_out_of_order_are_refused_by_the_platform(setup):
    from datetime import UTC, datetime, timedelta

    platform, tool_id, _, app = setup
    ags, _, _ = _services(platform, tool_id, app)
    column = ags.create_line_item(LineItem(label="Quiz", score_maximum=10))
    student = platform.user("student")["lti_id"]
    now = datetime.now(UTC)
    ags.post_score(Score(user_id=student, score_given=4, score_maximum=10, timestamp=now),
                   column.id)
    with pytest.raises(ServiceError) as late:  # an older score arriving after a newer one
        ags.post_score(Score(user_id=student, score_given=9, score_maximum=10,
                             timestamp=now - timedelta(seconds=5)), column.id)
    assert late.value.http_status == 400  # Canvas: 400, only when strictly earlier
    assert [r.result_score for r in ags.results(column.id)] == [4.0]
    # The same timestamp again replaces the score (Canvas refuses only earlier ones).
    ags.post_score(Score(user_id=student, score_given=5, score_maximum=10, timestamp=now),
                   column.id)
    assert [r.result_score for r in ags.results(column.id)] == [5.0]
    with pytest.raises(ValueError):  # checked before anything is sent
        Score(user_id=student, activity_progress="Done").to_json()


def test_the_roster_filters_by_role_across_canvas_shaped_pages(setup):
    platform, tool_id, _, app = setup
    _, nrps, course = _services(platform, tool_id, app)
    learners = list(nrps.members(
        role="http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", limit=3))
    students = platform.store.course_users(course, types=["StudentEnrollment"])[0]
    assert students > 3  # so it took several pages (opaque markers, no rel="last")
    assert len(learners) == students and all(m.roles.has("Learner") for m in learners)
    assert len({m.user_id for m in learners}) == students
    assert nrps.differences_url is None  # Canvas has no differences service
    assert nrps.context["title"] == "Introduction to Biology"


def test_a_next_page_on_another_origin_is_not_followed(setup):
    """The access token goes only to the origin of the service the launch named."""
    from ltikit.launch import NRPSEndpoint
    from ltikit.lti13.nrps import NamesRoleService
    from ltikit.lti13.services import ServiceClient

    platform, tool_id, _, app = setup
    seen, other = [], []
    elsewhere, roster = Flask("elsewhere"), Flask("roster")

    @elsewhere.route("/members")
    def members():
        seen.append(request.headers.get("Authorization"))
        return {"members": []}

    @roster.route("/members")
    def first_page():
        response = roster.response_class('{"members": [{"user_id": "u1", "roles": []}]}',
                                         mimetype="application/json")
        response.headers["Link"] = f'<{other[0]}/members?page=2>; rel="next"'
        return response

    state = LTIKit.state(app)
    registration = state.lti13.registrations.get(platform.issuer, platform.store.lti13_tool(
        tool_id=tool_id)["client_id"])
    keys = state.lti13.tool_keys()
    with serve(elsewhere) as elsewhere_url, serve(roster) as roster_url:
        other.append(elsewhere_url)
        # The roster's own origin is one the registration allows; the next page's is not.
        client = ServiceClient(ServiceTokens(state.storage.engine, keys, keys.box),
                               dataclasses.replace(registration, service_origins=(roster_url,)))
        service = NamesRoleService(client, NRPSEndpoint(roster_url + "/members"))
        with pytest.raises(ServiceError) as refused:
            list(service.members())
    assert refused.value.reason == "foreign_next_link" and seen == []


def test_moodle_style_link_headers_are_followed_to_the_last_page(moodle):
    """Moodle writes rel=\u201cnext\u201d and &amp; in AGS Link headers; a standard reader
    sees no next page and returns the first page alone, with no error."""
    platform, tool_id, _, app = moodle
    ags, _, _ = _services(platform, tool_id, app)
    for n in range(5):
        ags.create_line_item(LineItem(label=f"Item {n}", score_maximum=10))
    every = [i.id for i in ags.line_items()]  # Moodle: without limit, one page
    assert len(every) >= 5 and [i.id for i in ags.line_items(limit=2)] == every
    column = ags.line_items(limit=1).__next__()
    for who in ("student", "student02"):
        ags.post_score(Score(user_id=platform.user(who)["lti_id"], score_given=3,
                             score_maximum=10), column.id)
    assert len(list(ags.results(column.id, limit=1))) == 2


def test_a_full_page_with_an_unreadable_link_header_is_an_error_not_the_end(setup):
    """A Link header that names no next page in a readable way, on a full page, stops the
    listing with an error instead of returning part of it as if it were all."""
    from ltikit.launch import AGSEndpoint
    from ltikit.lti13.ags import AssignmentGradeService
    from ltikit.lti13.services import ServiceClient

    platform, tool_id, _, app = setup
    lms = Flask("odd")
    header = {"value": ""}

    @lms.route("/lineitems")
    def line_items():
        response = lms.response_class('[{"id": "x/1", "label": "A", "scoreMaximum": 1}]',
                                      mimetype="application/vnd.ims.lis.v2.lineitemcontainer+json")
        response.headers["Link"] = header["value"]
        return response

    state = LTIKit.state(app)
    registration = state.lti13.registrations.get(platform.issuer, platform.store.lti13_tool(
        tool_id=tool_id)["client_id"])
    keys = state.lti13.tool_keys()
    with serve(lms) as lms_url:
        client = ServiceClient(ServiceTokens(state.storage.engine, keys, keys.box),
                               dataclasses.replace(registration, service_origins=(lms_url,)))
        ags = AssignmentGradeService(client, AGSEndpoint(
            scopes=(AGS + "lineitem",), lineitems=lms_url + "/lineitems"))
        for unreadable in ('; rel="next"',  # a next page without its URL
                           "page two follows"):  # nothing readable, on a full page
            header["value"] = unreadable
            with pytest.raises(ServiceError) as stopped:
                list(ags.line_items(limit=1))
            assert stopped.value.reason == "unreadable_next_link"
        header["value"] = f'<{lms_url}/lineitems>; rel="next"'  # itself, again and again
        with pytest.raises(ServiceError) as looping:
            list(ags.line_items())
        assert looping.value.reason == "paging_loop"
        header["value"] = f'<{lms_url}/lineitems?page=1>; rel="first"'  # Canvas's last page
        assert len(list(ags.line_items(limit=1))) == 1
        header["value"] = f'<{lms_url}/nextgen/lineitems?page=1>; rel="first"'  # "next" in a URL
        assert len(list(ags.line_items(limit=1))) == 1
        header["value"] = ""
        assert len(list(ags.line_items(limit=1))) == 1  # no paging at all


def test_a_refusal_carries_the_reason_moodle_puts_in_its_status_line(moodle):
    platform, tool_id, _, app = moodle
    ags, _, _ = _services(platform, tool_id, app)
    column = ags.create_line_item(LineItem(label="Quiz", score_maximum=10))
    student = platform.user("student")["lti_id"]
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    ags.post_score(Score(user_id=student, score_given=4, score_maximum=10, timestamp=now),
                   column.id)
    with pytest.raises(ServiceError) as refused:  # same whole second: Moodle says 409
        ags.post_score(Score(user_id=student, score_given=9, score_maximum=10,
                             timestamp=now), column.id)
    error = refused.value
    assert error.http_status == 409 and error.reason == "service_refused"
    assert error.http_reason.startswith("Refusing score with an earlier timestamp")
    assert "Refusing score with an earlier timestamp" in error.message
    assert error.body_excerpt is None  # Moodle's body is [] and says nothing


def test_a_canvas_refusal_carries_the_start_of_its_body(setup):
    platform, tool_id, _, app = setup
    ags, _, _ = _services(platform, tool_id, app)
    with pytest.raises(ServiceError) as refused:
        ags.post_score(Score(user_id="nobody", score_given=1, score_maximum=10),
                       ags.create_line_item(LineItem(label="Q", score_maximum=10)).id)
    assert refused.value.body_excerpt and "errors" in refused.value.body_excerpt
    assert refused.value.body_excerpt in refused.value.message
