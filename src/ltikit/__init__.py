"""ltikit: secure LTI launches for Python tools.

What a tool author imports:

* ``ltikit.flask``: ``lti`` (the PyLTI-compatible decorator), ``LTIKit``, ``current_lti``;
* ``ltikit.Launch`` and friends: the launch model a view reads;
* ``ltikit.errors``: the exceptions (PyLTI's names);
* ``ltikit.testing``: sign launches in your own tests.
"""

from .errors import (
    LTIAuthenticationError,
    LTIException,
    LTIMalformedRequest,
    LTINotInSessionException,
    LTIPostMessageException,
    LTIRoleException,
)
from .launch import CanvasInfo, Context, Launch, Outcome, Platform, ResourceLink, User
from .roles import DEFAULT_ROLE_GROUPS, Role, RoleGroups, Roles

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_ROLE_GROUPS", "CanvasInfo", "Context", "LTIAuthenticationError", "LTIException",
    "LTIMalformedRequest", "LTINotInSessionException", "LTIPostMessageException",
    "LTIRoleException", "Launch", "Outcome", "Platform", "ResourceLink", "Role", "RoleGroups",
    "Roles", "User",
]
