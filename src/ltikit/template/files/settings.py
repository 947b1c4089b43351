"""Settings from the environment (and a ``.env`` file beside this one, if present).

Every setting is described in ``.env.example``.  The names of the old UCF Open template are
kept (``BASE_URL``, ``API_URL``, ``LTI_CONSUMER_KEY``, ``LTI_SHARED_SECRET``, ``SECRET_KEY``,
``OAUTH2_ID``, ``OAUTH2_KEY``, ``OAUTH2_URI``, ``OAUTH2_SCOPES``, ``LOG_FILE``,
``LOG_LEVEL``, ``DATABASE_URL``), so moving a deployment over is a matter of copying values.
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
    """A setting is missing or wrong; the message names it."""


def load_dotenv_file() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:  # python-dotenv is in requirements.txt; the environment still works
        return
    load_dotenv(HERE / ".env", override=False)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set (see .env.example)")
    return value


def flask_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Flask configuration for these settings."""
    env = os.environ if env is None else env
    base_url = _required(env, "BASE_URL").rstrip("/") + "/"
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"BASE_URL must be the Canvas URL, like https://canvas.example.edu/ "
                            f"(got {base_url!r})")
    api_url = env.get("API_URL", "").strip()
    if api_url and api_url.rstrip("/") + "/" != base_url + "api/v1/":
        raise SettingsError(f"API_URL must be BASE_URL + 'api/v1/' ({base_url}api/v1/); "
                            "it is kept only for compatibility and may be left empty")
    scopes = env.get("OAUTH2_SCOPES", "").split()
    database_url = env.get("DATABASE_URL", "").strip() or \
        f"sqlite:///{HERE / 'instance' / 'tool.sqlite3'}"
    return {
        "SECRET_KEY": _required(env, "SECRET_KEY"),
        "TOOL_TITLE": env.get("TOOL_TITLE", "__TOOL_TITLE__"),
        "TOOL_DESCRIPTION": env.get("TOOL_DESCRIPTION",
                                    "Shows your Canvas profile and the course."),
        "LAUNCH_ROLE": env.get("LAUNCH_ROLE", "staff"),
        "PLACEMENTS": {name: _flag(env, f"PLACEMENT_{name.upper()}",
                                   name == "course_navigation") for name in PLACEMENTS},
        "PRIVACY_LEVEL": "public",
        # LTI 1.3: ask for the grade and roster services (scopes in /lti/config.json), and
        # offer the link selection placement (deep linking).
        "LTI_ADVANTAGE": _flag(env, "LTI_ADVANTAGE", True),
        "DEEP_LINKING": _flag(env, "DEEP_LINKING", True),
        "ROSTER_PAGE_SIZE": int(env.get("ROSTER_PAGE_SIZE", "50") or 50),
        "COURSE_NAVIGATION_VISIBILITY": _choice(env, "COURSE_NAVIGATION_VISIBILITY",
                                                ("admins", "members", "public"), "admins"),
        "LTIKIT_CONSUMERS": {_required(env, "LTI_CONSUMER_KEY"):
                             _required(env, "LTI_SHARED_SECRET")},
        "LTIKIT_DATABASE_URL": database_url,
        "LTIKIT_AUTO_UPGRADE": _flag(env, "AUTO_UPGRADE", True),
        "LTIKIT_TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0") or 0),
        "LTIKIT_COOKIE_PARTITIONED": _flag(env, "COOKIE_PARTITIONED", True),
        "LTIKIT_CANVAS_INSTANCES": {parts.netloc.lower(): {
            "client_id": _required(env, "OAUTH2_ID"),
            "client_secret": _required(env, "OAUTH2_KEY"),
            "scopes": scopes,
            "base_url": base_url.rstrip("/"),
        }},
        "LTIKIT_ENCRYPTION_KEYS": _required(env, "TOKEN_ENCRYPTION_KEYS"),
        "LTIKIT_CANVAS_REDIRECT_URI": env.get("OAUTH2_URI", "").strip() or None,
        "LTIKIT_CANVAS_REFRESH_MARGIN": int(env.get("TOKEN_REFRESH_MARGIN", "60") or 60),
        # "connect total" seconds; totals stay well inside the worker timeout (gunicorn: 30).
        "LTIKIT_CANVAS_API_TIMEOUT": env.get("CANVAS_API_TIMEOUT", "").strip() or None,
        "LTIKIT_CANVAS_TOKEN_TIMEOUT": env.get("CANVAS_TOKEN_TIMEOUT", "").strip() or None,
        "LOG_FILE": env.get("LOG_FILE", "").strip() or None,
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_SAMESITE": "None",
    }
