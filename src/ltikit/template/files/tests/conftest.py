"""Fixtures: this tool with test settings, and a local Canvas stand-in to launch it from."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from ltikit.crypto import SecretBox
from settings import flask_config

KEY, SECRET = "test-key", "test-secret-shared-with-canvas"


def settings(tmp_path, **overrides):
    env = {
        "BASE_URL": "https://canvas.example.edu/", "LTI_CONSUMER_KEY": KEY,
        "LTI_SHARED_SECRET": SECRET, "SECRET_KEY": "test-secret-key",
        "OAUTH2_ID": "10000000000001", "OAUTH2_KEY": "test-client-secret",
        "TOKEN_ENCRYPTION_KEYS": SecretBox.generate_key(),
        "DATABASE_URL": f"sqlite:///{tmp_path}/tool.sqlite3",
    }
    env.update(overrides)
    return flask_config(env)


@pytest.fixture
def app(tmp_path):
    return create_app(settings(tmp_path))


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture
def serve():
    """serve(app) → the base URL of ``app`` running on 127.0.0.1 in a thread."""
    servers = []

    def start(wsgi_app):
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, request_handler=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
