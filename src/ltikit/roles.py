"""LTI roles: one parser for every form platforms send, and named role groups.

Platforms spell the same role many ways.  LTI 1.1 allows short context role names
(``Instructor``), LIS URNs (``urn:lti:role:ims/lis/Instructor``,
``urn:lti:instrole:ims/lis/Administrator``, ``urn:lti:sysrole:ims/lis/SysAdmin``) and
sub-roles (``Instructor/TeachingAssistant``); LTI 1.3 uses LIS v2 URIs
(``http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor``).  Everything is parsed
into :class:`Role` values with a *kind* (context, institution or system), a *name* and an
optional *sub-role*, compared without regard to case.

Role groups are what views ask for (``@lti(role='staff')``).  The defaults keep PyLTI's
group names and add the roles PyLTI refused by accident.  Two decisions are worth knowing:

* **Teaching assistants** (Canvas "TA": ``TeachingAssistant``, ``Instructor/TeachingAssistant``
  or ``membership/Instructor#TeachingAssistant``) are read as the context role
  ``TeachingAssistant``.  They are ``staff`` (they teach and grade) but *not* ``instructor``,
  so a view limited to instructors is not opened to TAs by accident.
* **Content developers** (Canvas "Designer", ``ContentDeveloper``) build course content but
  usually may not see grades; they are in ``content_developer`` only, not in ``staff``.
  Add them per app if your tool wants them: ``role_groups={'staff': [..., 'ContentDeveloper']}``.

Only *context* roles (the user's role in this course) count for ``instructor``, ``student``
and ``teaching_assistant``: Canvas also sends institution roles such as
``institution/person#Instructor`` for anyone who teaches *somewhere*, which says nothing
about this course.  Administrators count at every level.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from .errors import LTIConfigurationError

CONTEXT = "context"
INSTITUTION = "institution"
SYSTEM = "system"
OTHER = "other"

_URN_PREFIXES = (
    ("urn:lti:role:ims/lis/", CONTEXT),
    ("urn:lti:instrole:ims/lis/", INSTITUTION),
    ("urn:lti:sysrole:ims/lis/", SYSTEM),
)
_URI_PREFIXES = (
    ("http://purl.imsglobal.org/vocab/lis/v2/membership", CONTEXT),
    ("http://purl.imsglobal.org/vocab/lis/v2/institution/person", INSTITUTION),
    ("http://purl.imsglobal.org/vocab/lis/v2/system/person", SYSTEM),
    ("http://purl.imsglobal.org/vocab/lti/system/person", SYSTEM),
)

# Canonical spelling of the names in the LIS vocabularies, so that ``instructor`` and
# ``INSTRUCTOR`` come out as ``Instructor``.
_KNOWN_NAMES = {
    name.lower(): name
    for name in (
        "Administrator", "ContentDeveloper", "Instructor", "Learner", "Mentor", "Manager",
        "Member", "Officer", "TeachingAssistant", "Student", "Faculty", "Guest", "None",
        "Other", "Staff", "Alumni", "Observer", "ProspectiveStudent", "AccountAdmin",
        "Creator", "SysAdmin", "SysSupport", "User", "TestUser", "Grader",
        "NonCreditLearner", "GuestLearner", "ExternalLearner", "Learner", "Lecturer",
        "PrimaryInstructor", "SecondaryInstructor", "GuestInstructor", "ExternalInstructor",
    )
}


def _canonical(name: str) -> str:
    return _KNOWN_NAMES.get(name.lower(), name)


@dataclass(frozen=True, slots=True)
class Role:
    """One role of the launching user, as the platform sent it (``raw``) and parsed."""

    kind: str
    name: str
    sub_role: str | None = None
    raw: str = ""

    def matches(self, spec: Role) -> bool:
        """True if this role satisfies ``spec`` (a spec without a sub-role takes any)."""
        if self.kind != spec.kind or self.name.lower() != spec.name.lower():
            return False
        return spec.sub_role is None or (
            self.sub_role is not None and self.sub_role.lower() == spec.sub_role.lower()
        )

    def __str__(self) -> str:
        return self.raw or self.name


@lru_cache(maxsize=1024)
def parse_role(text: str) -> Role:
    """Parse one role in any of the LTI 1.1 or 1.3 forms.

    >>> parse_role("Instructor/TeachingAssistant").name
    'TeachingAssistant'
    """
    raw = text.strip()
    kind, rest = CONTEXT, raw
    lowered = raw.lower()
    for prefix, prefix_kind in _URN_PREFIXES:
        if lowered.startswith(prefix.lower()):
            kind, rest = prefix_kind, raw[len(prefix):]
            break
    else:
        for prefix, prefix_kind in _URI_PREFIXES:
            if lowered.startswith(prefix.lower()):
                kind, rest = prefix_kind, raw[len(prefix):]
                # "membership#Instructor" or "membership/Instructor#TeachingAssistant"
                rest = rest.lstrip("/").replace("#", "/", 1).strip("/")
                break
        else:
            if ":" in raw:  # some other URN or URI: keep it whole, it matches nothing built in
                return Role(OTHER, raw, None, raw)
    principal, _, sub = rest.partition("/")
    name = _canonical(principal)
    sub_role = _canonical(sub) if sub else None
    if kind == CONTEXT and (
        (name == "Instructor" and sub_role == "TeachingAssistant")
        or (name == "TeachingAssistant" and sub_role is None)
    ):
        # Three spellings of one role; see the module docstring for why it is not Instructor.
        name, sub_role = "TeachingAssistant", None
    return Role(kind, name, sub_role, raw)


class Roles(tuple[Role, ...]):
    """The launching user's roles: a tuple of :class:`Role` with group checks."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: str | Iterable[str] | None) -> Roles:
        """Parse a comma-separated LTI 1.1 ``roles`` string or an LTI 1.3 list."""
        if not value:
            return cls(())
        items = value.split(",") if isinstance(value, str) else value
        return cls(parse_role(item) for item in items if item and item.strip())

    def has(self, spec: str | Role) -> bool:
        """True if any role satisfies ``spec`` (a role in any accepted spelling)."""
        wanted = parse_role(spec) if isinstance(spec, str) else spec
        return any(role.matches(wanted) for role in self)

    def has_any(self, specs: Iterable[Role]) -> bool:
        return any(role.matches(spec) for spec in specs for role in self)


ANY = "any"

DEFAULT_ROLE_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "staff": (
        "Instructor", "TeachingAssistant", "Administrator",
        "urn:lti:instrole:ims/lis/Administrator",
        "urn:lti:sysrole:ims/lis/Administrator", "urn:lti:sysrole:ims/lis/SysAdmin",
    ),
    "instructor": ("Instructor",),
    "administrator": (
        "Administrator", "urn:lti:instrole:ims/lis/Administrator",
        "urn:lti:sysrole:ims/lis/Administrator", "urn:lti:sysrole:ims/lis/SysAdmin",
    ),
    "student": ("Learner", "Student"),
    "teaching_assistant": ("TeachingAssistant",),
    "content_developer": ("ContentDeveloper",),
    "mentor": ("Mentor",),
})
"""The built-in groups (PyLTI's ``staff``, ``instructor``, ``administrator``, ``student``
plus ``teaching_assistant``, ``content_developer`` and ``mentor``).  ``any`` skips the check."""


class RoleGroups(Mapping[str, tuple[Role, ...]]):
    """An immutable set of named role groups; build a new one to change it.

    ``RoleGroups({'reviewer': ['Mentor', 'TeachingAssistant']})`` starts from the defaults
    and adds or replaces the groups given, so one app's groups never leak into another's.
    """

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None, *,
                 include_defaults: bool = True) -> None:
        merged: dict[str, Iterable[str]] = dict(DEFAULT_ROLE_GROUPS) if include_defaults else {}
        merged.update(groups or {})
        if ANY in merged:
            raise LTIConfigurationError(f"'{ANY}' is reserved: it means no role check")
        self._groups = {
            name: tuple(parse_role(spec) for spec in specs) for name, specs in merged.items()
        }

    def __getitem__(self, name: str) -> tuple[Role, ...]:
        return self._groups[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    def check(self, roles: Roles, group: str) -> bool:
        """True if ``roles`` belong to ``group``; an unknown group is a programming error."""
        if group == ANY:
            return True
        try:
            specs = self._groups[group]
        except KeyError:
            raise LTIConfigurationError(f"Unknown role {group}.", reason="unknown_role_group") \
                from None
        return roles.has_any(specs)
