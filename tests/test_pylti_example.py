"""A PyLTI app, unchanged but for its imports, runs on ltikit (examples/pylti_app)."""

from __future__ import annotations

import importlib

import pytest

from ltikit.testing import launch_params, sign_launch

BASE = "http://127.0.0.1:5000"


@pytest.fixture
def example(tmp_path):
    module = importlib.reload(importlib.import_module("examples.pylti_app.app"))
    # Configuration a deployment would set; the code of the app is untouched.
    module.app.config["LTIKIT_DATABASE_URL"] = f"sqlite:///{tmp_path}/example.sqlite3"
    return module.app.test_client()


def launch(client, path, **params):
    signed = sign_launch(BASE + path, launch_params(**params), key="__consumer_key__",
                         secret="__lti_secret__")
    return client.open(**signed.for_flask())


def test_the_example_runs_its_pylti_routes(example):
    response = launch(example, "/initial", lis_person_sourcedid="ada")
    assert response.status_code == 200
    assert "Launched by ada" in response.get_data(as_text=True)
    assert "Still ada" in example.get("/session", base_url=BASE).get_data(as_text=True)
    assert "Hello ada" in example.get("/any", base_url=BASE).get_data(as_text=True)
    assert "Welcome, staff member ada" in example.get("/staff", base_url=BASE) \
        .get_data(as_text=True)
    assert "Goodbye" in example.get("/close", base_url=BASE).get_data(as_text=True)
    after = example.get("/session", base_url=BASE)
    assert after.status_code == 401
    assert "Session expired or unavailable" in after.get_data(as_text=True)


def test_the_example_refuses_students_on_staff_pages_through_its_error_callback(example):
    response = launch(example, "/staff", roles="Learner")
    assert response.status_code == 403
    assert "<h1>LTI error</h1>" in response.get_data(as_text=True)
    assert "Not authorized." in response.get_data(as_text=True)


def test_the_example_without_outcome_service_says_so(example):
    launch(example, "/any", roles="Learner")
    response = example.get("/grade", base_url=BASE)
    assert response.status_code == 502
    assert "cannot take a grade" in response.get_data(as_text=True)
