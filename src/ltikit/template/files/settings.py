"""Settings from the environment (and a ``.env`` file beside this one, if present).

Every setting is described in ``.env.example``.  The names of the old UCF Open template are
kept (``BASE_URL``, ``API_URL``, ``LTI_CONSUMER_KEY``, ``LTI_SHARED_SECRET``, ``SECRET_KEY``,
``OAUTH2_ID``, ``OAUTH2_KEY``, ``OAUTH2_URI``, ``OAUTH2_SCOPES``, ``LOG_FILE``,
``LOG_LEVEL``, ``DATABASE_URL``), so moving a deployment over is a matter of copying values.
The Canvas settings are optional: without them the tool serves any LMS, without the
Canvas API part.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
PLACEMENTS = ("course_navigation", "account_navigation", "user_navigation", "editor_button",
              "homework_submission")


class SettingsError(RuntimeError):
    """Settings are missing or wrong: ``problems`` holds one readable line per setting
    (all of them at once, so a deployer fixes ``.env`` in one go)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_dotenv_file() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:  # python-dotenv is in requirements.txt; the environment still works
        return
    load_dotenv(HERE / ".env", override=False)


class _Reader:
    """Reads settings from ``env``, noting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name, "").strip() or default

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            self.problems.append(f"{name} is not set (see .env.example)")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name).lower()
        if not value:
            return default
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, not {value!r}")
        return default

    def number(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.text(name)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            self.problems.append(f"{name} must be a whole number of at least {minimum}, "
                                 f"not {value!r}")
            return default
        return number

    def choice(self, name: str, choices: tuple[str, ...], default: str, *,
               upper: bool = False) -> str:
        value = self.text(name, default)
        value = value.upper() if upper else value
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}, not {value!r}")
            return default
        return value

    def together(self, names: tuple[str, ...], what: str) -> dict[str, str]:
        """Settings that are all set or all left empty: their values, or {} when all
        are empty (or some are missing, which is noted)."""
        values = {name: self.text(name) for name in names}
        missing = [name for name, value in values.items() if not value]
        if len(missing) == len(names):
            return {}
        if missing:
            self.problems.append(f"{', '.join(missing)} not set: {what} needs "
                                 f"{' and '.join(names)} (see .env.example), or none of them")
            return {}
        return values


def canvas_instances(read: _Reader) -> dict[str, Any]:
    """LTIKIT_CANVAS_INSTANCES: the Canvas this tool calls the API of, or none at all (the
    tool then serves every platform without the Canvas part)."""
    canvas = read.together(("BASE_URL", "OAUTH2_ID", "OAUTH2_KEY"), "the Canvas API")
    api_url = read.text("API_URL")
    if not canvas:
        if api_url and read.text("BASE_URL") == "":
            read.problems.append("API_URL is set but BASE_URL is not (see .env.example)")
        return {}
    base_url = canvas["BASE_URL"].rstrip("/") + "/"
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        read.problems.append(f"BASE_URL must be the Canvas URL, like "
                             f"https://canvas.example.edu/ (got {base_url!r})")
        return {}
    if api_url and api_url.rstrip("/") + "/" != base_url + "api/v1/":
        read.problems.append(f"API_URL must be BASE_URL + 'api/v1/' ({base_url}api/v1/); "
                             "it is kept only for compatibility and may be left empty")
    return {parts.netloc.lower(): {
        "client_id": canvas["OAUTH2_ID"], "client_secret": canvas["OAUTH2_KEY"],
        "scopes": read.text("OAUTH2_SCOPES").split(), "base_url": base_url.rstrip("/")}}


def flask_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Flask configuration for these settings; :class:`SettingsError` lists every
    missing or wrong one."""
    read = _Reader(os.environ if env is None else env)
    lti11 = read.together(("LTI_CONSUMER_KEY", "LTI_SHARED_SECRET"), "LTI 1.1")
    config = {
        "SECRET_KEY": read.required("SECRET_KEY"),
        "TOOL_TITLE": read.text("TOOL_TITLE", "__TOOL_TITLE__"),
        "TOOL_DESCRIPTION": read.text("TOOL_DESCRIPTION",
                                      "Shows who you are in the course, the roster and "
                                      "grades, and your Canvas profile from Canvas."),
        "LAUNCH_ROLE": read.text("LAUNCH_ROLE", "staff"),
        "PLACEMENTS": {name: read.flag(f"PLACEMENT_{name.upper()}", name == "course_navigation")
                       for name in PLACEMENTS},
        "PRIVACY_LEVEL": "public",
        # LTI 1.3: ask for the grade and roster services (scopes in /lti/config.json), and
        # offer the link selection placement (deep linking).
        "LTI_ADVANTAGE": read.flag("LTI_ADVANTAGE", True),
        "DEEP_LINKING": read.flag("DEEP_LINKING", True),
        "ROSTER_PAGE_SIZE": read.number("ROSTER_PAGE_SIZE", 50, minimum=1),
        "COURSE_NAVIGATION_VISIBILITY": read.choice("COURSE_NAVIGATION_VISIBILITY",
                                                    ("admins", "members", "public"), "admins"),
        # LTI 1.1 launches need a key and secret; without them the tool takes 1.3 only.
        "LTIKIT_CONSUMERS": {lti11["LTI_CONSUMER_KEY"]: lti11["LTI_SHARED_SECRET"]}
        if lti11 else {},
        # The one LTI 1.3 redirect URI to register on platforms (Moodle, Canvas and D2L
        # accept no other): launches meant for /deep-link or any other page of this tool
        # are verified at /launch and handed to their page.
        "LTIKIT_LTI13_REDIRECT_URI": "/launch",
        # LTI Dynamic Registration at /lti13/register: "links" (only through a link from
        # `python manage.py registration-link`), "open" (any platform), or "off".
        "LTIKIT_LTI13_REGISTRATION": read.choice("REGISTRATION", ("links", "open", "off"),
                                                 "links"),
        "LTIKIT_DATABASE_URL": read.text("DATABASE_URL",
                                         f"sqlite:///{HERE / 'instance' / 'tool.sqlite3'}"),
        "LTIKIT_AUTO_UPGRADE": read.flag("AUTO_UPGRADE", True),
        "LTIKIT_TRUSTED_PROXIES": read.number("TRUSTED_PROXIES", 0),
        "LTIKIT_COOKIE_PARTITIONED": read.flag("COOKIE_PARTITIONED", True),
        # Empty: no Canvas API part (a tool for Moodle, Blackboard, D2L, ...).
        "LTIKIT_CANVAS_INSTANCES": canvas_instances(read),
        "LTIKIT_ENCRYPTION_KEYS": read.required("TOKEN_ENCRYPTION_KEYS"),
        "LTIKIT_CANVAS_REDIRECT_URI": read.text("OAUTH2_URI") or None,
        "LTIKIT_CANVAS_REFRESH_MARGIN": read.number("TOKEN_REFRESH_MARGIN", 60),
        # "connect total" seconds; totals stay well inside the worker timeout (gunicorn: 30).
        "LTIKIT_CANVAS_API_TIMEOUT": read.text("CANVAS_API_TIMEOUT") or None,
        "LTIKIT_CANVAS_TOKEN_TIMEOUT": read.text("CANVAS_TOKEN_TIMEOUT") or None,
        "LOG_FILE": read.text("LOG_FILE") or None,
        "LOG_LEVEL": read.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO",
                                 upper=True),
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_SAMESITE": "None",
    }
    if read.problems:
        raise SettingsError(read.problems)
    return config

