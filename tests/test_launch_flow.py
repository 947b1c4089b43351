"""What @lti decides, without a web framework (ltikit.flow.LaunchFlow): a new launch or a
later request of one, the role checked before anything is stored, replays refused, and
the cookie the response carries.  What any adapter (Flask, Starlette) gets from the core."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from sqlalchemy import func, select

from ltikit.cookies import CookiePolicy
from ltikit.errors import (
    LTIAuthenticationError,
    LTIMalformedRequest,
    LTINotInSessionException,
    LTIRoleException,
)
from ltikit.flow import Authenticated, LaunchFlow
from ltikit.http import Request
from ltikit.launches import LaunchManager
from ltikit.lti11.consumers import ConsumerRegistry
from ltikit.roles import DEFAULT_ROLE_GROUPS, RoleGroups
from ltikit.settings import Settings
from ltikit.storage import SQLStorage, tables, upgrade
from ltikit.testing import launch_params, sign_launch

TOOL = "https://tool.example.edu"
KEY, SECRET = "key", "secret"


@pytest.fixture
def flow(tmp_path):
    storage = SQLStorage(f"sqlite:///{tmp_path}/db.sqlite3")
    upgrade(storage.engine)
    launches = LaunchManager(storage, "secret-key")

    def no_lti13():
        raise AssertionError("an LTI 1.1 request reached the LTI 1.3 flow")

    flow = LaunchFlow(Settings.load({}), ConsumerRegistry({KEY: SECRET}),
                      RoleGroups(DEFAULT_ROLE_GROUPS), CookiePolicy(), lambda: launches,
                      no_lti13)
    return flow, storage


def signed(**params) -> Request:
    launch = sign_launch(TOOL + "/launch", launch_params(**params), key=KEY, secret=SECRET)
    return Request("POST", TOOL + "/launch", path="/launch",
                   form=tuple(parse_qsl(launch.body or "")), headers=launch.headers)


def launches_stored(storage) -> int:
    with storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.launches)).scalar_one()


def test_a_launch_is_stored_once_and_its_later_requests_find_it(flow):
    flow, storage = flow
    launch = signed()
    first = flow.authenticate(launch)
    assert isinstance(first, Authenticated) and first.active.launch.user.name == "Ada Teacher"
    [cookie] = first.cookies
    assert cookie.startswith(f"ltikit_launch={first.active.token};") and "Secure" in cookie
    with pytest.raises(LTIAuthenticationError) as replay:
        flow.authenticate(launch)
    assert replay.value.reason == "replayed_nonce" and launches_stored(storage) == 1
    for later in (Request("GET", TOOL + "/next", query=(("ltikit_launch", first.active.token),)),
                  Request("GET", TOOL + "/next", cookies={"ltikit_launch": first.active.token}),
                  Request("GET", TOOL + "/api", headers={"X-LTIKit-Launch": first.active.token})):
        again = flow.authenticate(later, request_type="session")
        assert isinstance(again, Authenticated) and again.cookies == ()
        assert again.active.row_id == first.active.row_id


def test_the_role_is_checked_before_anything_is_stored(flow):
    flow, storage = flow
    with pytest.raises(LTIRoleException):
        flow.authenticate(signed(roles="Learner"), role="staff")
    assert launches_stored(storage) == 0


def test_request_types_are_pylti_s(flow):
    flow, _ = flow
    plain = Request("GET", TOOL + "/page")
    with pytest.raises(LTINotInSessionException):  # 'any' without a launch: a session page
        flow.authenticate(plain)
    with pytest.raises(LTIMalformedRequest) as refused:  # 'initial' demands a launch
        flow.authenticate(plain, request_type="initial")
    assert refused.value.reason == "not_a_launch"
    # 'session' never takes a new launch, even a valid one.
    with pytest.raises(LTINotInSessionException):
        flow.authenticate(signed(), request_type="session")
