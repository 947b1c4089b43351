"""Every way platforms spell a role lands in the right group."""

from __future__ import annotations

import pytest

from ltikit.errors import LTIConfigurationError
from ltikit.roles import DEFAULT_ROLE_GROUPS, RoleGroups, Roles

groups = RoleGroups()


@pytest.mark.parametrize(("roles", "group", "expected"), [
    ("Instructor", "staff", True),
    ("instructor", "staff", True),
    ("urn:lti:role:ims/lis/Instructor", "staff", True),
    ("URN:LTI:ROLE:IMS/LIS/INSTRUCTOR", "instructor", True),
    ("Learner, Instructor", "staff", True),
    ("urn:lti:instrole:ims/lis/Administrator", "staff", True),
    ("urn:lti:instrole:ims/lis/Administrator", "administrator", True),
    ("urn:lti:sysrole:ims/lis/SysAdmin", "administrator", True),
    ("TeachingAssistant", "staff", True),
    ("Instructor/TeachingAssistant", "staff", True),
    ("urn:lti:role:ims/lis/Instructor/TeachingAssistant", "teaching_assistant", True),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
     "staff", True),
    ("TeachingAssistant", "instructor", False),
    ("urn:lti:role:ims/lis/Instructor/TeachingAssistant", "instructor", False),
    ("ContentDeveloper", "staff", False),
    ("ContentDeveloper", "content_developer", True),
    ("Learner", "student", True),
    ("Student", "student", True),
    ("urn:lti:role:ims/lis/Learner/NonCreditLearner", "student", True),
    ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", "student", True),
    ("Learner", "staff", False),
    ("urn:lti:role:ims/lis/Mentor", "staff", False),
    ("urn:lti:role:ims/lis/Mentor", "mentor", True),
    # Teaching somewhere else in the institution is not teaching this course.
    ("Learner,urn:lti:instrole:ims/lis/Instructor", "staff", False),
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor", "instructor",
     False),
    ("http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator", "administrator",
     True),
    ("", "student", False),
    ("", "any", True),
    ("urn:example:custom-role", "staff", False),
])
def test_role_groups(roles, group, expected):
    assert groups.check(Roles.parse(roles), group) is expected


def test_lti13_role_lists_parse_the_same_way():
    roles = Roles.parse(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                         "http://purl.imsglobal.org/vocab/lis/v2/system/person#User"])
    assert groups.check(roles, "instructor")
    assert [r.kind for r in roles] == ["context", "system"]


def test_an_app_adds_groups_without_touching_anyone_elses():
    mine = RoleGroups({"staff": [*DEFAULT_ROLE_GROUPS["staff"], "ContentDeveloper"],
                       "reviewer": ["Mentor"]})
    assert mine.check(Roles.parse("ContentDeveloper"), "staff")
    assert mine.check(Roles.parse("urn:lti:role:ims/lis/Mentor"), "reviewer")
    assert not RoleGroups().check(Roles.parse("ContentDeveloper"), "staff")
    assert "reviewer" not in RoleGroups()


def test_unknown_groups_and_redefining_any_are_programming_errors():
    with pytest.raises(LTIConfigurationError, match="Unknown role nope"):
        groups.check(Roles.parse("Instructor"), "nope")
    with pytest.raises(LTIConfigurationError):
        RoleGroups({"any": ["Learner"]})
