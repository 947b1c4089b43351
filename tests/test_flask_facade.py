"""What a tool author reaches through ``LTIKit``: app-wide defaults for ``@lti``, refusals
to Flask's error handlers, the registrations, tool keys and storage, settings checked at
start-up."""

from __future__ import annotations

import pytest
from flask import Flask

from conftest import KEY, SECRET
from ltikit.errors import LTIConfigurationError, LTIException, LTIRoleException
from ltikit.flask import LTIKit, lti

LAUNCH = "https://tool.example.edu/launch"


def app_with(tmp_path, config=None, **kit_options) -> tuple[Flask, LTIKit]:
    app = Flask("facade", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", LTIKIT_CONSUMERS={KEY: SECRET},
                      LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", **(config or {}))
    kit = LTIKit(app, **kit_options)

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")  # no role, no error: the extension's
    def launch(lti):
        return "in"

    @app.route("/open", methods=["POST"])
    @lti(request="initial", role="any")  # the route's own role wins
    def open_to_all(lti):
        return "open"

    return app, kit


def test_the_extension_gives_every_route_its_error_callback_and_role(tmp_path, signed):
    seen = []

    def error(exception=None):
        seen.append(type(exception["exception"]).__name__)
        return "not for you"

    app, _ = app_with(tmp_path, error=error, role="staff")
    client = app.test_client()
    refused = client.open(**signed(url=LAUNCH, roles="Learner").for_flask())
    assert refused.status_code == 403 and refused.get_data(as_text=True) == "not for you"
    assert seen == ["LTIRoleException"]
    assert client.open(**signed(url=LAUNCH, roles="Instructor").for_flask()).status_code == 200
    opened = client.open(**signed(url=LAUNCH.replace("launch", "open"),
                                  roles="Learner").for_flask())
    assert opened.get_data(as_text=True) == "open"


def test_without_a_callback_refusals_reach_the_apps_error_handlers(tmp_path, signed,
                                                                    ltikit_log):
    app, _ = app_with(tmp_path, role="staff")

    @app.errorhandler(LTIRoleException)
    def not_staff(exc):
        return f"staff only ({exc.reason})", exc.status

    @app.errorhandler(LTIException)
    def any_refusal(exc):
        return f"refused: {exc.reason}", exc.status

    client = app.test_client()
    role = client.open(**signed(url=LAUNCH, roles="Learner").for_flask())
    assert (role.status_code, role.get_data(as_text=True)) == (403, "staff only (role)")
    forged = client.open(**signed(url=LAUNCH, secret="wrong").for_flask())
    assert forged.status_code == 401 and forged.get_data(as_text=True).startswith("refused:")
    assert any("LTI request refused" in r.getMessage() for r in ltikit_log.records)


def test_without_handlers_or_callbacks_the_refusal_is_ltikits_page(tmp_path, signed):
    app, _ = app_with(tmp_path, role="staff")
    role = app.test_client().open(**signed(url=LAUNCH, roles="Learner").for_flask())
    assert role.status_code == 403 and "Error 403 (role)" in role.get_data(as_text=True)


def test_the_facade_reaches_registrations_tool_keys_storage_and_urls(tmp_path):
    from ltikit.crypto import SecretBox

    app, kit = app_with(tmp_path, {"LTIKIT_ENCRYPTION_KEYS": SecretBox.generate_key()})
    kit.registrations.add(name="Moodle", issuer="https://moodle.example.edu",
                          client_id="c-1", auth_login_url="https://moodle.example.edu/auth",
                          token_url="https://moodle.example.edu/token",
                          jwks_url="https://moodle.example.edu/jwks", deployments=("1",))
    assert kit.registrations.get("https://moodle.example.edu", "c-1").name == "Moodle"
    kid = kit.tool_keys.generate()
    assert [k["kid"] for k in kit.tool_keys.jwks()["keys"]] == [kid]
    assert kit.storage.engine.url.database.endswith("db.sqlite3")
    assert kit.settings.launch_lifetime == 8 * 3600
    assert kit.consumers.secret_for(KEY) == SECRET
    with app.test_request_context("/launch", base_url="https://tool.example.edu"):
        assert kit.public_url() == LAUNCH


def test_an_extension_set_up_with_init_app_serves_the_current_app(tmp_path):
    kit = LTIKit()
    app = Flask("factory", instance_path=str(tmp_path / "f"))
    app.config.update(SECRET_KEY="k", LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/f.sqlite3")
    kit.init_app(app)
    with app.app_context():
        assert kit.settings.cookie_name == "ltikit_launch"


@pytest.mark.parametrize(("setting", "value"), [
    ("LTIKIT_LAUNCH_LIFETIME", "eight hours"),
    ("LTIKIT_LTI13_JWKS_TIMEOUT", "soon"),
    ("LTIKIT_MAX_REQUEST_BYTES", 0),
    ("LTIKIT_COOKIE_NAME", "bad name"),
])
def test_a_bad_setting_fails_at_start_up_not_on_the_first_launch(tmp_path, setting, value):
    app = Flask("bad", instance_path=str(tmp_path / "b"))
    app.config.update(SECRET_KEY="k", LTIKIT_DATABASE_URL=f"sqlite:///{tmp_path}/b.sqlite3",
                      **{setting: value})
    with pytest.raises(LTIConfigurationError):
        LTIKit(app)
