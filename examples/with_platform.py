"""``python3 dev.py run``: the template tool inside the local platform, ready to click.

The platform (a Canvas stand-in) listens on http://localhost:8000 and the tool (the
project template of ``ltikit new``) on http://127.0.0.1:5000: two sites, as a real tool
and LMS are.  On first start the platform gets an API developer key for the tool and
installs it from its XML configuration URL, as Canvas's "By URL" does, and over LTI 1.3 by
Dynamic Registration from a single-use registration link.  Everything is
kept in ``.dev/`` (or ``$LTIKIT_DEV_DIR``); delete it to start over.  ``TOOL_DIR=<project>``
runs a project made with ``ltikit new`` instead of the template in this checkout (a FastAPI
one, ``ltikit new --framework fastapi``, runs under uvicorn).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent
# The tool: ltikit's template as it is in this checkout, or (TOOL_DIR) a project made with
# `ltikit new`, which has the same app.py and settings.py.
TOOL_DIR = Path(os.environ.get("TOOL_DIR") or ROOT / "src" / "ltikit" / "template" / "files")
sys.path.insert(0, str(TOOL_DIR))

from app import create_app  # noqa: E402  (the template's app)
from ltikit.crypto import SecretBox  # noqa: E402
from ltikit.platform import DevPlatform  # noqa: E402
from settings import flask_config  # noqa: E402

KEY_NAME = "Template tool"
LTI13_NAME = "Template tool (LTI 1.3)"


def _secret(state: Path, name: str, make) -> str:
    path = state / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _flag(name: str, default: bool = True) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value not in ("false", "0", "no", "off")


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


def kit_of(tool_app):
    """ltikit's extension of the tool: Flask's ``LTIKit.of(app)``, or the FastAPI
    template's ``app.state.kit``."""
    if hasattr(tool_app, "wsgi_app"):
        from ltikit.flask import LTIKit

        return LTIKit.of(tool_app)
    return tool_app.state.kit


class _Serving:
    """The tool served in a thread: Werkzeug for a Flask app, uvicorn for an ASGI one."""

    def __init__(self, tool_app, port: int) -> None:
        if hasattr(tool_app, "wsgi_app"):
            self._wsgi = make_server("127.0.0.1", port, tool_app, threaded=True,
                                     request_handler=_Quiet)
            threading.Thread(target=self._wsgi.serve_forever, daemon=True).start()
            return
        import uvicorn

        self._wsgi = None
        self._asgi = uvicorn.Server(uvicorn.Config(tool_app, host="127.0.0.1", port=port,
                                                   log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._asgi.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._asgi.started and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._asgi.started:
            raise RuntimeError(f"the tool did not start on port {port}")

    def stop(self) -> None:
        if self._wsgi is not None:
            self._wsgi.shutdown()
            self._wsgi.server_close()
        else:
            self._asgi.should_exit = True
            self._thread.join(timeout=10)


def install_lti13(platform: DevPlatform, tool_app, tool_url: str) -> None:
    """The same tool again over LTI 1.3, installed by LTI Dynamic Registration: a
    single-use registration link (what ``python manage.py registration-link`` prints),
    pasted into the platform (Canvas: Developer Keys > + LTI Registration), where the
    tool's registration page is confirmed.  The platform must be serving already."""
    kit = kit_of(tool_app)
    keys = kit.tool_keys
    if not keys.jwks()["keys"]:  # `ltikit tool-keys generate`, done here for you
        keys.generate()

    registrations = kit.registrations
    tool = next((t for t in platform.store.tools() if t["name"] == LTI13_NAME), None)
    found = platform.store.lti13_tool(tool_id=tool["id"]) if tool else None
    registered = registrations.get(platform.issuer, found["client_id"]) if found else None
    if tool is not None and (
            found is None or registered is None
            or not found["oidc_initiation_url"].startswith(tool_url + "/")
            or not registered.auth_login_url.startswith(platform.url + "/")):
        # Installed at other ports (PORT or PLATFORM_PORT changed), or the tool's database
        # was deleted: installed again.
        platform.store.remove_tool(tool["id"])
        found = None
    if found is None:
        link = kit.registration_links.create(lifetime=600, note="python3 dev.py run")
        tool_id, _, _ = platform.register_tool(f"{tool_url}/lti13/register/{link}")
        # The 1.1 install of the same tool has its name: tell them apart.
        platform.store.rename_tool(tool_id, LTI13_NAME)


def main() -> None:
    platform_port = int(os.environ.get("PLATFORM_PORT", "8000"))
    tool_port = int(os.environ.get("PORT", "5000"))
    tool_url = f"http://127.0.0.1:{tool_port}"
    state = Path(os.environ.get("LTIKIT_DEV_DIR", ROOT / ".dev"))
    state.mkdir(parents=True, exist_ok=True)
    try:
        platform = DevPlatform(
            state / "platform.sqlite3", port=platform_port,
            TOKEN_LIFETIME=float(os.environ.get("TOKEN_LIFETIME", "3600")),
            # false: launch as Moodle, Blackboard or D2L do, without Canvas's extensions.
            CANVAS_EXTENSIONS=_flag("CANVAS_EXTENSIONS"),
            # false: no storage frame for browsers that block the tool's cookies (Moodle).
            PLATFORM_STORAGE=_flag("PLATFORM_STORAGE"))
    except RuntimeError as exc:  # a data file from an older ltikit
        sys.exit(f"{exc}\nDelete {state} to start over.")
    callback = f"{tool_url}/ltikit/canvas/callback"
    # The newest key for this tool's callback (a new one when PORT changed).
    keys = [k for k in platform.store.developer_keys()
            if k["name"] == KEY_NAME and callback in k["redirect_uris"]]
    if keys:
        client_id, client_secret = keys[-1]["id"], keys[-1]["secret"]
    else:
        client_id, client_secret = platform.add_developer_key(KEY_NAME, [callback])
    lti_key = "template-tool"
    lti_secret = _secret(state, "lti-secret", lambda: secrets.token_urlsafe(32))
    env = {
        "BASE_URL": platform.url + "/", "LTI_CONSUMER_KEY": lti_key,
        "LTI_SHARED_SECRET": lti_secret, "OAUTH2_ID": str(client_id),
        "OAUTH2_KEY": client_secret,
        "SECRET_KEY": _secret(state, "secret-key", lambda: secrets.token_urlsafe(32)),
        "TOKEN_ENCRYPTION_KEYS": _secret(state, "token-key", SecretBox.generate_key),
        "DATABASE_URL": f"sqlite:///{state / 'tool.sqlite3'}",
        "TOOL_TITLE": "Template tool",
        # Everyone sees the link here, so you can watch a student being refused politely.
        "COURSE_NAVIGATION_VISIBILITY": "members",
        "TOKEN_REFRESH_MARGIN": os.environ.get("TOKEN_REFRESH_MARGIN", "60"),
        "COOKIE_PARTITIONED": os.environ.get("COOKIE_PARTITIONED", "true"),
        "ROSTER_PAGE_SIZE": os.environ.get("ROSTER_PAGE_SIZE", "50"),
    }
    tool_app = create_app(flask_config(env))
    tool_server = _Serving(tool_app, tool_port)
    for tool in platform.store.tools():
        if tool["consumer_key"] == lti_key and not (tool["url"] or "").startswith(tool_url + "/"):
            platform.store.remove_tool(tool["id"])  # installed at another PORT
    if not any(t["consumer_key"] == lti_key for t in platform.store.tools()):
        platform.add_lti11_tool_from_xml(lti_key, lti_secret,
                                         config_url=f"{tool_url}/lti/config.xml")
    platform.start()
    try:
        install_lti13(platform, tool_app, tool_url)
    except RuntimeError as exc:
        platform.stop()
        sys.exit(f"Installing the tool over LTI 1.3 (Dynamic Registration) failed: {exc}")
    course = platform.course_id("BIO101")
    print(f"\n  Open {platform.url}/courses/{course}\n\n"
          "  You are Terry Teacher: click 'Template tool' in the course navigation, authorize\n"
          f"  it, and see your Canvas profile ('{LTI13_NAME}' is the same tool launched over\n"
          "  LTI 1.3). Switch users at the top right (students are refused: the tool is for\n"
          f"  staff). The tool runs on {tool_url}; Ctrl-C stops both.\n", flush=True)
    stopping = threading.Event()
    # SIGTERM (dev.py stopped, a process manager) stops both servers as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        # Short waits, not one: a signal that lands just before a blocking wait begins
        # runs its handler only when the thread next wakes (seen: dev.py run not stopping).
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        tool_server.stop()
        platform.stop()


if __name__ == "__main__":
    main()
