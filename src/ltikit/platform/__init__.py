"""``ltikit platform``: a local LMS that behaves like Canvas where a tool can see it.

It launches LTI 1.1 tools in an iframe with Canvas's parameters, takes grades over Basic
Outcomes, and answers Canvas's OAuth2 endpoints and the REST API calls tools make, so a
tool's whole flow runs on one laptop or in CI.  It is a development tool: no passwords
(pick the current user at the top of any page), a SQLite file for its state.  It needs
Flask (``pip install "ltikit[flask]"``).

From Python (tests)::

    from ltikit.platform import DevPlatform

    with DevPlatform(TOKEN_LIFETIME=5) as platform:   # settings: see DEFAULTS
        tool = platform.add_lti11_tool("My tool", "key", "secret",
                                       url="http://127.0.0.1:5001/launch")

From the shell: ``ltikit platform --port 8000``.
"""

from .app import DEFAULTS, DevPlatform, create_app

__all__ = ["DEFAULTS", "DevPlatform", "create_app"]
