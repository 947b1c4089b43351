"""Fixtures: this tool with test settings, a test client, and uvicorn for the tests that
need a real server (a local Canvas stand-in calls it back)."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.testclient import TestClient

from app import create_app
from ltikit.crypto import SecretBox
from settings import flask_config

KEY, SECRET = "test-key", "test-secret-shared-with-canvas"
BASE = "https://tool.example.edu"


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


def client_of(app):
    """A browser for ``app`` at https://tool.example.edu (cookies kept, no redirects
    followed, so each step can be looked at)."""
    return TestClient(app, base_url=BASE, follow_redirects=False)


@pytest.fixture
def app(tmp_path):
    return create_app(settings(tmp_path))


@pytest.fixture
def client(app):
    return client_of(app)


@pytest.fixture
def serve():
    """serve(app) → the base URL of ``app`` running under uvicorn on 127.0.0.1."""
    import socket

    import uvicorn

    servers = []

    def start(asgi_app):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(asgi_app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
