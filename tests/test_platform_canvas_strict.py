"""The local platform refuses what Canvas refuses (issue 13).

Each test is a tool doing something that works on a lenient platform and fails on Canvas,
written by hand against the platform (no ltikit on the tool side), so that it now fails
locally too; and the right way, which works.  The Canvas source each point follows is named
in the platform's code (``ltikit/platform/lti_services.py``, ``web.py``, ``lti13.py``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from ltikit.platform import DevPlatform
from ltikit.testing.platform import PlatformUser

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SCORE = "application/vnd.ims.lis.v1.score+json"
TOOL = "http://127.0.0.1:9"  # never called: the tests play the tool's part themselves


class HandWrittenTool:
    """An LTI 1.3 tool installed in the platform, whose requests the test makes itself."""

    def __init__(self, platform: DevPlatform, *, privacy: str = "public",
                 scopes=(AGS + "lineitem", AGS + "score", AGS + "result.readonly", NRPS),
                 placements=None, custom_fields=None) -> None:
        self.platform = platform
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="k1", alg="RS256", use="sig")
        self.tool_id, self.client_id, self.deployment_id = platform.add_lti13_tool(
            "Hand-written", oidc_initiation_url=TOOL + "/login",
            target_link_uri=TOOL + "/launch", public_jwk=jwk, scopes=list(scopes),
            privacy_level=privacy, custom_fields=custom_fields, placements=placements)
        self.token_url = platform.url + "/login/oauth2/token"

    def sign(self, claims) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})

    def assertion(self, **claims) -> str:
        now = int(time.time())
        return self.sign({"iss": self.client_id, "sub": self.client_id, "aud": self.token_url,
                          "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **claims})

    def token_response(self, scopes, **claims) -> requests.Response:
        return requests.post(self.token_url, timeout=10, data={
            "grant_type": "client_credentials", "scope": " ".join(scopes),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.assertion(**claims)})

    def headers(self, *scopes) -> dict[str, str]:
        response = self.token_response(scopes or (AGS + "lineitem", AGS + "score",
                                                  AGS + "result.readonly", NRPS))
        assert response.status_code == 200, response.text
        return {"Authorization": "Bearer " + response.json()["access_token"]}

    def login_form(self, user: PlatformUser, course: int,
                   placement: str = "course_navigation") -> dict[str, str]:
        _, fields = user.launch_form(f"/courses/{course}/external_tools/{self.tool_id}"
                                     f"/launch?placement={placement}")
        return dict(fields)

    def auth(self, user: PlatformUser, login: dict[str, str]) -> dict[str, str]:
        """The tool's auth request for ``login``: the fields the platform posts back."""
        page = user.session.post(self.platform.url + "/api/lti/authorize_redirect",
                                 timeout=30, data={
                                     "scope": "openid", "response_type": "id_token",
                                     "response_mode": "form_post", "prompt": "none",
                                     "client_id": self.client_id,
                                     "redirect_uri": TOOL + "/launch",
                                     "login_hint": login["login_hint"],
                                     "lti_message_hint": login["lti_message_hint"],
                                     "nonce": uuid.uuid4().hex, "state": "st"})
        assert page.status_code == 200, page.text
        return dict(user.form_of(page)[1])

    def launch(self, user: PlatformUser, course: int, placement="course_navigation"):
        answer = self.auth(user, self.login_form(user, course, placement))
        keys = requests.get(self.platform.url + "/api/lti/security/jwks", timeout=10).json()
        kid = jwt.get_unverified_header(answer["id_token"])["kid"]
        jwk = next(k for k in keys["keys"] if k["kid"] == kid)
        return jwt.decode(answer["id_token"], jwt.PyJWK(jwk).key, algorithms=["RS256"],
                          audience=self.client_id)


@pytest.fixture
def platform(tmp_path):
    with DevPlatform(tmp_path / "p.sqlite3") as running:
        yield running


@pytest.fixture
def course(platform):
    return platform.course_id("BIO101")


def line_item(tool, course, headers, label="Quiz", maximum=10):
    created = requests.post(f"{tool.platform.url}/api/lti/courses/{course}/line_items",
                            json={"label": label, "scoreMaximum": maximum}, headers=headers,
                            timeout=10)
    assert created.status_code == 201, created.text  # Canvas: 201 Created
    assert created.headers["Content-Type"] == "application/vnd.ims.lis.v2.lineitem+json"
    return created.json()["id"]


def score(item_url, headers, user_id, *, when=None, **fields):
    body = {"userId": user_id, "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": (when or datetime.now(UTC)).isoformat(), **fields}
    return requests.post(item_url + "/scores", data=json.dumps(body), timeout=10,
                         headers={**headers, "Content-Type": SCORE})


# 1. user ids --------------------------------------------------------------------------------

def test_the_13_sub_is_not_the_11_user_id_and_services_want_the_13_id(platform, course):
    tool = HandWrittenTool(platform)
    student = PlatformUser(platform, "student")
    claims = tool.launch(student, course)
    legacy = claims[CLAIM + "lti11_legacy_user_id"]
    assert re.fullmatch(r"[0-9a-f]{40}", legacy) and uuid.UUID(claims["sub"])
    assert claims["sub"] != legacy and claims[CLAIM + "lti1p1"]["user_id"] == legacy
    assert tool.login_form(student, course)["login_hint"] == legacy  # Canvas's login_hint
    # A 1.1 launch by the same user carries the legacy id, as Canvas's does.
    tool11 = platform.add_lti11_tool("Old", "key", "secret", url=TOOL + "/lti11")
    _, fields = student.launch_form(f"/courses/{course}/external_tools/{tool11}/launch"
                                    "?placement=course_navigation")
    assert dict(fields)["user_id"] == legacy
    headers = tool.headers()
    item = line_item(tool, course, headers)
    # A tool that scores with the 1.1 id (it worked when the ids were one) is refused...
    wrong = score(item, headers, legacy, scoreGiven=5, scoreMaximum=10)
    assert wrong.status_code == 422
    # ...the 1.3 id (or Canvas's numeric user id) works.
    assert score(item, headers, claims["sub"], scoreGiven=5, scoreMaximum=10).status_code == 200
    numeric = str(platform.user("student")["id"])
    assert score(item, headers, numeric, scoreGiven=6, scoreMaximum=10).status_code == 200
    roster = requests.get(f"{platform.url}/api/lti/courses/{course}/names_and_roles",
                          headers=headers, timeout=10).json()["members"]
    me = next(m for m in roster if m["user_id"] == claims["sub"])
    assert me["lti11_legacy_user_id"] == legacy


# 2. scores only for students ----------------------------------------------------------------

@pytest.mark.parametrize("login", ["teacher", "ta", "observer", "designer"])
def test_a_score_for_anyone_but_a_student_is_refused(platform, course, login):
    tool = HandWrittenTool(platform)
    headers = tool.headers()
    item = line_item(tool, course, headers)
    sub = tool.launch(PlatformUser(platform, login), course)["sub"]
    refused = score(item, headers, sub, scoreGiven=5, scoreMaximum=10)
    assert refused.status_code == 422
    assert refused.json() == {"errors": {"type": "unprocessable_entity", "message":
                                         "User not found in course or is not a student"}}


# 3. gradingProgress -------------------------------------------------------------------------

def test_a_score_not_fully_graded_clears_the_grade(platform, course):
    tool = HandWrittenTool(platform)
    headers = tool.headers()
    item = line_item(tool, course, headers)
    student = platform.user("student")
    now = datetime.now(UTC)
    assert score(item, headers, student["lti_id"], when=now, scoreGiven=7,
                 scoreMaximum=10).status_code == 200
    assignment_id = int(item.rsplit("/", 1)[1])
    assert platform.store.grade(assignment_id, student["id"])["score"] == pytest.approx(0.7)
    # Pending (or Failed, NotReady): Canvas ignores scoreGiven and clears the grade.
    assert score(item, headers, student["lti_id"], when=now + timedelta(seconds=1),
                 gradingProgress="Pending", scoreGiven=9, scoreMaximum=10).status_code == 200
    assert platform.store.grade(assignment_id, student["id"])["score"] is None
    results = requests.get(item + "/results", headers=headers, timeout=10).json()
    assert [r.get("resultScore") for r in results] == [None]
    # PendingManual keeps the score, as FullyGraded does.
    assert score(item, headers, student["lti_id"], when=now + timedelta(seconds=2),
                 gradingProgress="PendingManual", scoreGiven=8,
                 scoreMaximum=10).status_code == 200
    assert platform.store.grade(assignment_id, student["id"])["score"] == pytest.approx(0.8)


# 4. statuses and error bodies ---------------------------------------------------------------

def test_scores_are_checked_with_canvas_statuses(platform, course):
    tool = HandWrittenTool(platform)
    headers = tool.headers()
    item = line_item(tool, course, headers, maximum=20)
    sub = platform.user("student")["lti_id"]
    now = datetime.now(UTC)
    first = score(item, headers, sub, when=now, scoreGiven=10, scoreMaximum=20)
    assert first.status_code == 200 and first.headers["Content-Type"] == SCORE
    assert "resultUrl" in first.json()
    # The same timestamp again is accepted; only a strictly earlier one is refused (400).
    assert score(item, headers, sub, when=now, scoreGiven=11, scoreMaximum=20).status_code == 200
    earlier = score(item, headers, sub, when=now - timedelta(seconds=1), scoreGiven=1,
                    scoreMaximum=20)
    assert earlier.status_code == 400 and earlier.json()["errors"]["type"] == "bad_request"
    # scoreGiven without scoreMaximum: 422.
    missing = score(item, headers, sub, when=now + timedelta(seconds=1), scoreGiven=3)
    assert missing.status_code == 422
    assert missing.json()["errors"] == {"type": "unprocessable_entity", "message":
                                        "ScoreMaximum not supplied when ScoreGiven present."}
    # scoreMaximum 0 is allowed: the score is not scaled.
    zero = score(item, headers, sub, when=now + timedelta(seconds=2), scoreGiven=4,
                 scoreMaximum=0)
    assert zero.status_code == 200
    grade = platform.store.grade(int(item.rsplit("/", 1)[1]), platform.user("student")["id"])
    assert grade["score"] == pytest.approx(4 / 20)


def test_line_items_coupled_to_assignments_cannot_be_deleted(platform, course):
    tool = HandWrittenTool(platform)
    headers = tool.headers()
    # An assignment made in the course (as a teacher does in Canvas): its line item.
    assignment = platform.add_assignment(course, tool.tool_id, "Made in the course")
    coupled = f"{platform.url}/api/lti/courses/{course}/line_items/{assignment}"
    refused = requests.delete(coupled, headers=headers, timeout=10)
    assert refused.status_code == 401 and refused.content == b""
    assert platform.store.assignment(assignment) is not None
    # One the tool made itself may go (with its assignment).
    own = line_item(tool, course, headers)
    assert requests.delete(own, headers=headers, timeout=10).status_code == 204
    assert requests.get(own, headers=headers, timeout=10).status_code == 404


def test_another_tools_line_item_is_a_412(platform, course):
    ours, theirs = HandWrittenTool(platform), HandWrittenTool(platform)
    item = line_item(theirs, course, theirs.headers())
    headers = ours.headers()
    for method in ("get", "put", "delete"):
        answer = getattr(requests, method)(item, headers=headers, timeout=10,
                                           **({"json": {"label": "x"}} if method == "put"
                                              else {}))
        assert answer.status_code == 412, (method, answer.text)
        assert answer.json() == {"errors": {"type": "precondition_failed", "message":
                                            "Tool does not have permission to view line_item"}}
    sub = ours.platform.user("student")["lti_id"]
    assert score(item, headers, sub, scoreGiven=1, scoreMaximum=10).status_code == 412


def test_service_errors_have_canvas_bodies(platform, course):
    tool = HandWrittenTool(platform, scopes=(AGS + "score", AGS + "lineitem"))
    url = f"{platform.url}/api/lti/courses/{course}/line_items"
    assert requests.get(url, timeout=10).json() == {
        "errors": {"type": "unauthorized", "message": "Missing access token"}}
    forged = requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=10)
    assert forged.status_code == 401 and forged.json()["errors"]["type"] == "unauthorized"
    roster = requests.get(f"{platform.url}/api/lti/courses/{course}/names_and_roles",
                          headers=tool.headers(AGS + "score"), timeout=10)
    assert roster.status_code == 401 and roster.json() == {
        "errors": {"type": "unauthorized", "message": "Insufficient permissions"}}


# 5. Link URLs carry no access_token ---------------------------------------------------------

def test_link_urls_drop_the_access_token_so_page_two_needs_the_header(platform, course):
    from test_platform_canvas_api import exchange, get_code, key

    client_id, secret = key(platform)
    token = exchange(platform, client_id, secret, get_code(platform, client_id)).json()[
        "access_token"]
    first = requests.get(f"{platform.url}/api/v1/courses/{course}/users", timeout=10,
                         params={"access_token": token, "per_page": 3, "include[]": "email"})
    assert first.status_code == 200
    following = first.links["next"]["url"]
    assert "access_token" not in following and token not in first.headers["Link"]
    assert parse_qs(urlsplit(following).query) == {"include[]": ["email"], "page": ["2"],
                                                   "per_page": ["3"]}
    # A tool that authenticates with ?access_token= and follows the link: 401 on page 2.
    assert requests.get(following, timeout=10).status_code == 401
    assert requests.get(following, timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 200


# 6. NRPS privacy ----------------------------------------------------------------------------

@pytest.mark.parametrize(("privacy", "present", "absent"), [
    ("anonymous", set(), {"name", "given_name", "family_name", "email", "picture",
                          "lis_person_sourcedid"}),
    ("name_only", {"name", "given_name", "family_name", "lis_person_sourcedid"},
     {"email", "picture"}),
    ("email_only", {"email"}, {"name", "given_name", "family_name", "picture",
                               "lis_person_sourcedid"}),
    ("public", {"name", "given_name", "family_name", "email", "picture",
                "lis_person_sourcedid"}, set()),
])
def test_the_roster_shows_what_the_privacy_level_allows(platform, course, privacy, present,
                                                        absent):
    tool = HandWrittenTool(platform, privacy=privacy)
    answer = requests.get(f"{platform.url}/api/lti/courses/{course}/names_and_roles",
                          headers=tool.headers(NRPS), timeout=10)
    student = next(m for m in answer.json()["members"]
                   if m["user_id"] == platform.user("student")["lti_id"])
    assert present <= set(student) and not absent & set(student)
    assert student["lti11_legacy_user_id"] == platform.user("student")["lti_context_id"]
    assert 'rel="differences"' not in answer.headers["Link"]  # Canvas has none


# 7. single-use, five-minute login hints -----------------------------------------------------

def test_an_lti_message_hint_works_once_and_for_five_minutes(platform, course):
    tool = HandWrittenTool(platform)
    teacher = PlatformUser(platform, "teacher")
    login = tool.login_form(teacher, course)
    assert "id_token" in tool.auth(teacher, login)
    # A tool (or a "new window" link) replaying the same login: Canvas's error, not a launch.
    replay = tool.auth(teacher, login)
    assert replay == {"error": "launch_no_longer_valid", "error_description":
                      "The launch has either expired or already been consumed",
                      "state": "st"}
    late = tool.login_form(teacher, course)
    real = time.time
    platform.store.clock = lambda: real() + 301
    try:
        assert tool.auth(teacher, late)["error"] == "launch_no_longer_valid"
    finally:
        platform.store.clock = real
    # Another user's session does not use the launch up (login_required, then it works).
    intact = tool.login_form(teacher, course)
    other = PlatformUser(platform, "student")
    assert tool.auth(other, intact)["error"] == "login_required"
    assert "id_token" in tool.auth(teacher, intact)


# 8. the issuer is not the platform's host ---------------------------------------------------

def test_the_issuer_is_canvas_clouds_while_the_endpoints_are_elsewhere(platform, course):
    tool = HandWrittenTool(platform, placements={"editor_button": {
        "enabled": "true", "message_type": "LtiDeepLinkingRequest"}})
    registration = platform.lti13_registration(tool.client_id)
    assert registration["issuer"] == "https://canvas.instructure.com" != platform.url
    for endpoint in ("auth_login_url", "token_url", "jwks_url"):
        assert registration[endpoint].startswith(platform.url + "/")
    teacher = PlatformUser(platform, "teacher")
    assert tool.login_form(teacher, course, "editor_button")["iss"] == registration["issuer"]
    claims = tool.launch(teacher, course, "editor_button")
    assert claims["iss"] == registration["issuer"]
    settings = claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]

    def respond(audience):
        now = int(time.time())
        return teacher.session.post(settings["deep_link_return_url"], timeout=30, data={
            "JWT": tool.sign({
                "iss": tool.client_id, "aud": audience, "iat": now, "exp": now + 300,
                "nonce": uuid.uuid4().hex, CLAIM + "deployment_id": tool.deployment_id,
                CLAIM + "message_type": "LtiDeepLinkingResponse", CLAIM + "version": "1.3.0",
                DL + "content_items": [{"type": "link", "url": "https://example.com/x",
                                        "title": "X"}]})})

    # A deep linking response addressed to the platform's URL (derived from where the
    # launch came from) is refused; addressed to the issuer, it is taken.
    assert respond(platform.url).status_code == 400
    assert respond(registration["issuer"]).status_code == 200
    assert [i["title"] for i in platform.store.content_items(course)] == ["X"]


def test_each_platform_of_a_test_may_have_its_own_issuer(tmp_path):
    with DevPlatform(tmp_path / "a.sqlite3", issuer=None) as own, \
            DevPlatform(tmp_path / "b.sqlite3", issuer="https://canvas.beta.instructure.com"
                        ) as beta:
        assert own.issuer == own.url
        assert beta.lti13_registration("1")["issuer"] == "https://canvas.beta.instructure.com"


# 9. page sizes and markers ------------------------------------------------------------------

def test_ags_lists_default_to_ten_per_page(platform, course):
    tool = HandWrittenTool(platform)
    headers = tool.headers()
    for n in range(12):
        line_item(tool, course, headers, label=f"Item {n}")
    url = f"{platform.url}/api/lti/courses/{course}/line_items"
    first = requests.get(url, headers=headers, timeout=10)
    assert len(first.json()) == 10 and "next" in first.links
    second = requests.get(first.links["next"]["url"], headers=headers, timeout=10)
    assert len(second.json()) == 2 and "next" not in second.links
    # limit sizes the pages and stays in the links (Canvas keeps it for AGS).
    limited = requests.get(url, headers=headers, params={"limit": 5}, timeout=10)
    assert len(limited.json()) == 5
    assert parse_qs(urlsplit(limited.links["next"]["url"]).query)["limit"] == ["5"]


def test_nrps_pages_have_opaque_markers_no_last_and_at_most_fifty(platform, course):
    tool = HandWrittenTool(platform)
    headers = tool.headers(NRPS)
    url = f"{platform.url}/api/lti/courses/{course}/names_and_roles"
    page = requests.get(url, headers=headers, params={"limit": 4}, timeout=10)
    assert len(page.json()["members"]) == 4
    assert "last" not in page.links  # a tool computing the page count from it breaks
    following = parse_qs(urlsplit(page.links["next"]["url"]).query)
    assert "limit" not in following and following["per_page"] == ["4"]
    assert not following["page"][0].isdigit()  # not a number: follow, do not count
    seen = len(page.json()["members"])
    while "next" in page.links:
        page = requests.get(page.links["next"]["url"], headers=headers, timeout=10)
        seen += len(page.json()["members"])
    assert seen == platform.store.course_users(course)[0]
    capped = requests.get(url, headers=headers, params={"limit": 500}, timeout=10)
    assert parse_qs(urlsplit(capped.links["current"]["url"]).query)["per_page"] == ["50"]


# 10. deep linking settings and variables ----------------------------------------------------

def test_link_selection_asks_for_resource_links_only_and_sends_no_data(platform, course):
    tool = HandWrittenTool(platform, placements={"link_selection": {
        "enabled": "true", "message_type": "LtiDeepLinkingRequest"}})
    teacher = PlatformUser(platform, "teacher")
    claims = tool.launch(teacher, course, "link_selection")
    settings = claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
    assert settings["accept_types"] == ["ltiResourceLink"]
    assert settings["accept_multiple"] is True and settings["auto_create"] is False
    assert "data" not in settings and "accept_lineitem" not in settings
    now = int(time.time())
    answer = teacher.session.post(settings["deep_link_return_url"], timeout=30, data={
        "JWT": tool.sign({
            "iss": tool.client_id, "aud": platform.issuer, "iat": now, "exp": now + 300,
            "nonce": "n", CLAIM + "deployment_id": tool.deployment_id,
            CLAIM + "message_type": "LtiDeepLinkingResponse", CLAIM + "version": "1.3.0",
            DL + "content_items": [
                {"type": "link", "url": "https://example.com/page", "title": "A page"},
                {"type": "ltiResourceLink", "url": TOOL + "/item/1", "title": "Quiz 1"}]})})
    assert answer.status_code == 200
    # The link is not added (link_selection takes only resource links); the quiz is.
    assert [i["title"] for i in platform.store.content_items(course)] == ["Quiz 1"]
    assert "does not accept" in answer.text


def test_the_variables_tools_use_most_are_expanded_and_unknown_ones_kept(platform, course):
    names = ["Canvas.membership.roles", "Canvas.course.sectionIds",
             "Canvas.course.sectionSisSourceIds", "Canvas.user.sisSourceId",
             "Canvas.account.id", "Canvas.root_account.id", "Person.address.timezone",
             "Message.locale", "Canvas.enrollment.enrollmentState", "Person.sourcedId",
             "Canvas.xuser.allRoles", "com.instructure.contextLabel", "Canvas.made.up"]
    tool = HandWrittenTool(platform, custom_fields={n.replace(".", "_"): "$" + n
                                                    for n in names})
    custom = tool.launch(PlatformUser(platform, "teacher"), course)[CLAIM + "custom"]
    teacher = platform.user("teacher")
    section = platform.store.sections_of(course)[0]
    assert custom["Canvas_membership_roles"] == "TeacherEnrollment"
    assert custom["Canvas_course_sectionIds"] == str(section["id"])
    assert custom["Canvas_course_sectionSisSourceIds"] == section["sis_section_id"]
    assert custom["Canvas_user_sisSourceId"] == teacher["sis_user_id"]
    assert custom["Person_address_timezone"] == teacher["time_zone"]
    assert custom["Message_locale"] == "en"
    assert custom["Canvas_enrollment_enrollmentState"] == "active"
    assert custom["com_instructure_contextLabel"] == "BIO101"
    assert "urn:lti:instrole:ims/lis/Instructor" in custom["Canvas_xuser_allRoles"]
    assert custom["Canvas_account_id"] == custom["Canvas_root_account_id"]
    assert custom["Canvas_made_up"] == "$Canvas.made.up"  # as Canvas leaves it
    admin = tool.launch(PlatformUser(platform, "admin"), course)[CLAIM + "custom"]
    assert admin["Canvas_membership_roles"] == "Account Admin"


# also: scoped developer keys, client assertions ---------------------------------------------

def test_a_scoped_developer_key_without_a_scope_parameter_gets_invalid_scope(platform):
    from test_platform_canvas_api import REDIRECT, Browser, query

    client_id, _ = platform.add_developer_key(
        "Scoped", [REDIRECT], scopes=["url:GET|/api/v1/users/:id"], require_scopes=True)
    answer = Browser(platform, "teacher").request_authorization(
        client_id=client_id, response_type="code", redirect_uri=REDIRECT, state="s")
    assert answer.status_code == 302
    assert query(answer)["error"] == "invalid_scope" and "state" not in query(answer)


def test_the_client_assertion_is_found_by_its_sub_whatever_its_iss(platform):
    tool = HandWrittenTool(platform)
    granted = tool.token_response([AGS + "score"], iss="my-tool.example.edu")
    assert granted.status_code == 200, granted.text
    assert tool.token_response([AGS + "score"], sub="10000000009999").status_code == 401
    no_sub = tool.token_response([AGS + "score"], sub=None)
    assert no_sub.status_code == 400
