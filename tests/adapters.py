"""The same small tool on each adapter (Flask, and FastAPI on ltikit.starlette), driven
through one interface, so a test of what a tool decides runs against both.

Routes: ``/launch`` (a new launch), ``/page`` (a later request), ``/staff`` (either, staff
only), ``/pick`` (deep linking requests only), ``/end`` (ends the launch).
"""

# No "from __future__ import annotations": FastAPI reads the views' annotations, which
# name objects local to fastapi_tool.
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

BASE = "https://tool.example.edu"
KEY = "canvas-key"
SECRET = "s3cret-shared-with-canvas"
ADAPTERS = ("flask", "fastapi")


@dataclass
class Answer:
    status: int
    text: str
    headers: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def flask_tool(tmp_path, clock, errors, **config):
    from flask import Flask

    from ltikit.flask import LTIKit, lti

    app = Flask("tool", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="test-secret-key", LTIKIT_CONSUMERS={KEY: SECRET},
                      LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/ltikit.sqlite3", **config)
    kit = LTIKit(app, clock=clock, error=_recording(errors))

    @app.route("/launch", methods=["GET", "POST"])
    @lti(request="initial")
    def launch(lti):
        return f"hello {lti.user.name}"

    @app.route("/page")
    @lti(request="session")
    def page(lti):
        return f"page for {lti.user_id}"

    @app.route("/staff", methods=["GET", "POST"])
    @lti(request="any", role="staff")
    def staff(lti):
        return f"staff page for {lti.user_id}"

    @app.route("/pick", methods=["GET", "POST"])
    @lti(request="initial", message_types=("LtiDeepLinkingRequest",))
    def pick(lti):
        return f"pick for {lti.user_id}"

    @app.route("/end", methods=["POST"])
    @lti(request="session")
    def end(lti):
        lti.close_session()
        return "ended"

    client = app.test_client()

    def send(method, path, *, query=None, data=None, headers=None):
        url = urlsplit(path)
        response = client.open(url.path, method=method, base_url=BASE,
                               query_string=url.query or query, data=data, headers=headers)
        return Answer(response.status_code, response.get_data(as_text=True),
                      response.headers)

    return app, kit, send


def fastapi_tool(tmp_path, clock, errors, **config):
    from fastapi import Depends, FastAPI
    from fastapi.responses import PlainTextResponse
    from starlette.testclient import TestClient

    from ltikit.starlette import LTI, LTIKit

    app = FastAPI()
    kit = LTIKit(app, config={"LTIKIT_CONSUMERS": {KEY: SECRET},
                              "LTIKIT_DATABASE_URL": f"sqlite:///{tmp_path}/ltikit.sqlite3",
                              **config},
                 secret_key="test-secret-key", clock=clock, error=_recording(errors))

    @app.api_route("/launch", methods=["GET", "POST"], response_class=PlainTextResponse)
    async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
        return f"hello {lti.user.name}"

    @app.get("/page", response_class=PlainTextResponse)
    async def page(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
        return f"page for {lti.user_id}"

    @app.api_route("/staff", methods=["GET", "POST"], response_class=PlainTextResponse)
    async def staff(lti: Annotated[LTI, Depends(kit.launch(role="staff"))]):
        return f"staff page for {lti.user_id}"

    @app.api_route("/pick", methods=["GET", "POST"], response_class=PlainTextResponse)
    async def pick(lti: Annotated[LTI, Depends(kit.launch(
            request="initial", message_types=("LtiDeepLinkingRequest",)))]):
        return f"pick for {lti.user_id}"

    @app.post("/end", response_class=PlainTextResponse)
    async def end(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
        await lti.close_session()
        return "ended"

    client = TestClient(app, base_url=BASE, follow_redirects=False)

    def send(method, path, *, query=None, data=None, headers=None):
        content = data if isinstance(data, (str, bytes)) else None
        form = data if isinstance(data, dict) else None
        response = client.request(method, path, params=query, content=content, data=form,
                                  headers=headers)
        return Answer(response.status_code, response.text, response.headers)

    return app, kit, send


def _recording(errors):
    """PyLTI's error callback: records the exception, answers with the reason."""
    if errors is None:
        return None

    def error(exception=None):
        exc = exception["exception"]
        errors.append(exc)
        return f"refused: {exc.reason}"

    return error


class Tool:
    """The tool on one adapter: ``kit``, and requests as a browser sends them."""

    def __init__(self, adapter, tmp_path, *, clock=time.time, errors=None, **config):
        make = flask_tool if adapter == "flask" else fastapi_tool
        self.adapter = adapter
        self.app, self.kit, self._send = make(tmp_path, clock, errors, **config)

    def get(self, path, **query):
        return self._send("GET", path, query=query or None)

    def post(self, path, data=None, headers=None):
        return self._send("POST", path, data=data, headers=headers)

    def launch(self, signed):
        """A signed LTI 1.1 launch (``ltikit.testing.sign_launch``)."""
        parts = urlsplit(signed.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self._send(signed.method, path, data=signed.body, headers=signed.headers)

    def launch13(self, platform, path="/launch", **claims):
        """The OIDC login and the id_token POST, as a browser inside the platform sends
        them; ``claims`` as for ``TestPlatform.claims``."""
        target = BASE + path
        login = self.get("/lti13/login", iss=platform.issuer, login_hint="hint",
                         target_link_uri=target, client_id=platform.client_id,
                         lti_message_hint=uuid.uuid4().hex)
        location = login.header("Location") or ""
        assert login.status == 302 and location.startswith(platform.issuer + "/auth"), \
            (login.status, login.text[:300])
        auth = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        token = platform.id_token(platform.claims(nonce=auth["nonce"], target_link_uri=target,
                                                  **claims))
        redirect = urlsplit(auth["redirect_uri"])
        return self.post(redirect.path, data={"id_token": token, "state": auth["state"]})
