"""An LTI 1.3 launch produced by an independent platform implementation (PyPI's
``lti1p3platform``) is accepted by an ltikit tool, over real HTTP, as a browser would
follow it: login initiation, the tool's redirect to the auth endpoint, the auto-posted
id_token.
"""

from __future__ import annotations

import html
import re

import pytest

from browser import serve
from independent_platform import IndependentPlatform
from ltikit.flask.lti13 import STATE_COOKIE
from ltikit.lti13 import Registrations
from ltikit.lti13.oidc import state_cookie
from ltikit.testing.platform import browser_session
from test_lti13_e2e import tool_13


@pytest.fixture
def interop(tmp_path):
    tool = tool_13(tmp_path)
    platform = IndependentPlatform()
    with serve(platform.app(), host="localhost") as platform_url, serve(tool) as tool_url:
        platform.url = platform_url
        platform.tool_login_url, platform.tool_launch_url = \
            f"{tool_url}/lti13/login", f"{tool_url}/launch"
        Registrations(tool.extensions["ltikit"].storage.engine).add(
            **platform.registration_for_tool(), deployments=(platform.deployment_id,))
        yield platform, tool_url


def follow_launch(platform: IndependentPlatform, user_id: str, session=None):
    """What a browser does: the login redirects, then the auto-submitted id_token form."""
    session = session or browser_session()
    form = session.get(f"{platform.url}/launch/{user_id}", timeout=30)
    assert form.status_code == 200, form.text
    action = html.unescape(re.search(r'action="([^"]+)"', form.text).group(1))
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'name="([^"]+)" value="([^"]*)"', form.text)}
    return session, fields, session.post(action, data=fields, timeout=30)


@pytest.mark.parametrize(("user_id", "name", "staff"), [("teacher-1", "Ines Instructor", True),
                                                        ("student-1", "Lee Learner", False)])
def test_a_launch_from_lti1p3platform_is_accepted(interop, user_id, name, staff):
    platform, _ = interop
    session, _, page = follow_launch(platform, user_id)
    assert page.status_code == 200, page.text
    assert f"Hello {name}" in page.text
    assert "<p id=version>1.3</p>" in page.text
    assert "<p id=course>Interop Course</p>" in page.text
    assert "<p id=canvas>77</p>" in page.text
    assert f"<p id=staff>{staff}</p>" in page.text
    link = html.unescape(re.search(r"id=again href='([^']+)'", page.text).group(1))
    following = session.get(link if link.startswith("http") else page.url.rsplit("/", 1)[0]
                            + link, timeout=30)
    assert f"Still {name}" in following.text


def test_its_launch_cannot_be_replayed(interop):
    platform, _ = interop
    session, fields, first = follow_launch(platform, "student-1")
    assert first.status_code == 200
    # The same id_token and state again, with the login's cookie put back: the nonce is spent.
    session.cookies.set(*state_cookie(fields["state"], STATE_COOKIE), domain="127.0.0.1",
                        path="/")
    again = session.post(first.url, data=fields, timeout=30)
    assert again.status_code == 401 and "(replayed_nonce)" in again.text, again.text


# -- LTI Advantage services against lti1p3platform -----------------------------------------

@pytest.fixture
def services_interop(tmp_path):
    from ltikit.flask import LTIKit, lti
    from ltikit.lti13.deep_linking import LtiResourceLink
    from test_lti13_services import service_tool

    tool = service_tool(tmp_path)

    @tool.route("/pick", methods=["POST"])
    @lti(request="initial", message_types=("LtiDeepLinkingRequest",))
    def pick(lti):
        return lti.deep_link_response([LtiResourceLink(url=tool_url[0] + "/launch",
                                                       title="Interop quiz")])

    @tool.route("/roster-changes")
    @lti(request="session")
    def roster_changes(lti):
        members = [m.user_id for m in lti.nrps.members()]
        url = lti.nrps.differences_url
        changed = [(m.user_id, m.status) for m in lti.nrps.members(url=url)] if url else None
        return {"members": members, "differences": url, "changed": changed}

    tool_url: list[str] = []
    platform = IndependentPlatform()
    with serve(platform.app(), host="localhost") as platform_url, serve(tool) as url:
        tool_url.append(url)
        platform.url = platform_url
        platform.tool_login_url, platform.tool_launch_url = f"{url}/lti13/login", f"{url}/launch"
        platform.tool_jwks_url, platform.tool_deep_link_url = f"{url}/lti13/jwks", f"{url}/pick"
        LTIKit.state(tool).lti13.tool_keys().generate()
        Registrations(tool.extensions["ltikit"].storage.engine).add(
            **platform.registration_for_tool(), deployments=(platform.deployment_id,))
        yield platform, url


def launch_id_of(page) -> str:
    return re.search(r"<p id=launch>([^<]+)</p>", page.text).group(1)


def test_ags_a_grade_reaches_lti1p3platform(services_interop):
    platform, tool_url = services_interop
    session, _, page = follow_launch(platform, "student-1")
    assert page.status_code == 200, page.text
    sent = session.post(f"{tool_url}/grade", data={"score": "0.6",
                                                   "ltikit_launch": launch_id_of(page)})
    assert sent.text == "sent=True", sent.text
    session.post(f"{tool_url}/grade", data={"score": "0.7", "ltikit_launch": launch_id_of(page)})
    assert [(s["userId"], s["scoreGiven"], s["scoreMaximum"]) for s in platform.scores] == [
        ("student-1", 0.6, 1.0), ("student-1", 0.7, 1.0)]
    assert platform.scores[0]["activityProgress"] == "Completed"
    assert platform.tokens_granted == 1  # one token for both scores


def test_nrps_the_roster_comes_from_lti1p3platform_across_pages(services_interop):
    platform, tool_url = services_interop
    session, _, page = follow_launch(platform, "teacher-1")
    roster = session.get(f"{tool_url}/roster", params={"ltikit_launch": launch_id_of(page)})
    assert roster.status_code == 200, roster.text
    assert sorted(line.split("|")[0] for line in roster.text.splitlines()) == [
        "Ines Instructor", "Lee Learner"]


def test_nrps_differences_are_followed_where_a_platform_offers_them(services_interop):
    """Canvas has no differences service; platforms that follow NRPS 2.0 §2.4.3 put one on
    the last page, and the client keeps it for a later read of the changes."""
    platform, tool_url = services_interop
    session, _, page = follow_launch(platform, "teacher-1")
    changes = session.get(f"{tool_url}/roster-changes",
                          params={"ltikit_launch": launch_id_of(page)}).json()
    assert changes["members"] == ["teacher-1", "student-1"]
    assert changes["differences"] == f"{platform.url}/memberships?since=r1"
    assert changes["changed"] == [["student-1", "Deleted"]]


def test_deep_linking_lti1p3platform_accepts_the_tools_response(services_interop):
    platform, _ = services_interop
    session = browser_session()
    form = session.get(f"{platform.url}/deep-link/teacher-1", timeout=30)
    action = html.unescape(re.search(r'action="([^"]+)"', form.text).group(1))
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.text))
    answer = session.post(action, data={k: html.unescape(v) for k, v in fields.items()},
                          timeout=30)
    assert answer.status_code == 200, answer.text
    back = html.unescape(re.search(r"action='([^']+)'", answer.text).group(1))
    token = re.search(r"name='JWT' value='([^']+)'", answer.text).group(1)
    received = session.post(back, data={"JWT": token}, timeout=30)
    assert "Content received" in received.text
    assert platform.deep_linked == [{"type": "ltiResourceLink", "title": "Interop quiz",
                                     "url": platform.tool_launch_url}]
