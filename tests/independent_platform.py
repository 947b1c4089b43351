"""An LTI 1.3 platform that is not ours: PyPI's ``lti1p3platform``, behind a small Flask app.

ltikit's own development platform shares authors (and so possible misreadings of the
specification) with the tool side; this one was written by others.  Only its framework
glue is here: the OIDC login initiation, the auth endpoint that signs the id_token, its
JWKS, the token endpoint (``get_access_token``), deep linking (``set_dl`` and
``validate_deeplinking_resp``), each through the package's own classes.  The package
leaves the AGS and NRPS endpoints to its host: the two small ones here (scores, members)
authorise every call with its ``validate_token``.
"""

from __future__ import annotations

import html
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, redirect, request
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
USERS = {
    "teacher-1": {"name": "Ines Instructor", "email": "ines@example.edu",
                  "roles": [LIS + "membership#Instructor", LIS + "institution/person#Faculty"]},
    "student-1": {"name": "Lee Learner", "email": "lee@example.edu",
                  "roles": [LIS + "membership#Learner"]},
}


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class _FlaskRequest(Request):
    def build_metadata(self, req: Any):
        return {"method": req.method, "form_data": req.form.to_dict(),
                "get_data": req.args.to_dict(), "headers": dict(req.headers),
                "content_type": req.content_type, "path": req.path, "json": None}


class IndependentPlatform:
    """``lti1p3platform`` as a platform on ``url`` (set ``url`` before the first launch)."""

    def __init__(self, *, client_id: str = "interop-client",
                 deployment_id: str = "interop-deployment") -> None:
        self.client_id, self.deployment_id = client_id, deployment_id
        self.private_key, self.public_key = _pem_pair()
        self.url = ""
        self.tool_login_url = self.tool_launch_url = ""
        self.tool_jwks_url = self.tool_deep_link_url = ""
        self.scores: list[dict[str, Any]] = []
        self.deep_linked: list[dict[str, Any]] = []
        self.tokens_granted = 0

    # -- what the tool registers -------------------------------------------------------
    def registration_for_tool(self) -> dict[str, str]:
        return {"name": "lti1p3platform", "issuer": self.url, "client_id": self.client_id,
                "auth_login_url": self.url + "/auth", "token_url": self.url + "/token",
                "jwks_url": self.url + "/jwks"}

    def lineitem_url(self) -> str:
        return self.url + "/lineitems/7"

    # -- lti1p3platform's side ---------------------------------------------------------
    def _config(self) -> LTI1P3PlatformConfAbstract:
        outer = self

        class Config(LTI1P3PlatformConfAbstract):
            def init_platform_config(self, **kwargs: Any) -> None:
                self._registration = (
                    Registration().set_iss(outer.url).set_client_id(outer.client_id)
                    .set_deployment_id(outer.deployment_id)
                    .set_launch_url(outer.tool_launch_url)
                    .set_oidc_login_url(outer.tool_login_url)
                    .set_platform_public_key(outer.public_key)
                    .set_platform_private_key(outer.private_key)
                    .set_tool_key_set_url(outer.tool_jwks_url)
                    .set_deeplink_launch_url(outer.tool_deep_link_url))

            def get_registration_by_params(self, **kwargs: Any) -> Registration:
                return self._registration

        return Config()

    def app(self) -> Flask:
        app = Flask("lti1p3platform-host")
        outer = self

        class Login(OIDCLoginAbstract):
            def set_lti_message_hint(self, **kwargs: Any) -> None:
                self._lti_message_hint = kwargs["hint"]

            def get_redirect(self, url: str):
                return redirect(url)

        class Launch(LTIAdvantageMessageLaunchAbstract):
            def prepare_launch(self, preflight_response: dict[str, Any]) -> None:
                user_id = preflight_response["login_hint"]
                user = USERS[user_id]
                self.set_user_data(user_id, user["roles"], full_name=user["name"],
                                   email_address=user["email"])
                self.set_resource_link_claim("link-7", title="Interop link")
                self.set_launch_context_claim(
                    "course-42", context_types=[LIS + "course#CourseOffering"],
                    context_title="Interop Course", context_label="INT101")
                self.set_custom_parameters_claim({"canvas_user_id": "77"})
                self.set_ags(lineitems_url=outer.url + "/lineitems",
                             lineitem_url=outer.lineitem_url())
                self.set_nrps(context_memberships_url=outer.url + "/memberships")
                if preflight_response.get("lti_message_hint") == "deep-link":
                    self.set_dl(outer.url + "/deep-link-return", title="Pick",
                                accept_types={"ltiResourceLink", "link"},
                                extra_data={"session": "abc"})

            def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any):
                fields = "".join(
                    f'<input type="hidden" name="{name}" value="{html.escape(launch_data[name])}">'
                    for name in ("id_token", "state"))
                return (f'<form method="post" action="{html.escape(launch_data["launch_url"])}">'
                        f"{fields}</form>")

        @app.get("/launch/<user_id>")
        def start(user_id: str):
            login = Login(_FlaskRequest(request), outer._config())
            login.set_lti_message_hint(hint="link-7")
            return login.initiate_login(user_id)

        @app.get("/deep-link/<user_id>")
        def start_deep_link(user_id: str):
            login = Login(_FlaskRequest(request), outer._config())
            login.set_lti_message_hint(hint="deep-link")
            login.set_deeplinking_launch_url()
            return login.initiate_login(user_id)

        @app.post("/token")
        def token():
            config = outer._config()
            config.get_registration()
            answer = config.get_access_token(request.form.to_dict())
            outer.tokens_granted += 1
            return jsonify(answer)

        def authorised(scope: str) -> bool:
            config = outer._config()
            config.get_registration()
            header = request.headers.get("Authorization", "")
            try:
                return header.startswith("Bearer ") and config.validate_token(
                    header[7:], allowed_scopes=[scope])
            except Exception:
                return False

        @app.post("/lineitems/7/scores")
        def scores():
            if not authorised("https://purl.imsglobal.org/spec/lti-ags/scope/score"):
                return Response(status=401)
            outer.scores.append(request.get_json(force=True))
            return Response(status=204)

        @app.get("/memberships")
        def memberships():
            if not authorised("https://purl.imsglobal.org/spec/lti-nrps/scope/"
                              "contextmembership.readonly"):
                return Response(status=401)
            members = [{"user_id": user_id, "roles": user["roles"], "name": user["name"],
                        "status": "Active"} for user_id, user in USERS.items()]
            if request.args.get("since"):
                # The changes since the first read (NRPS 2.0 §2.4.3): the student left.
                return jsonify({"id": request.url, "context": {"id": "course-42"},
                                "members": [dict(members[-1], status="Deleted")]})
            page = int(request.args.get("page", "1"))
            response = jsonify({"id": request.url, "context": {"id": "course-42"},
                                "members": members[page - 1:page]})
            if page < len(members):
                response.headers["Link"] = f'<{outer.url}/memberships?page={page + 1}>; ' \
                                           'rel="next"'
            else:  # the last page says where to ask for changes later
                response.headers["Link"] = f'<{outer.url}/memberships?since=r1>; ' \
                                           'rel="differences"'
            return response

        @app.post("/deep-link-return")
        def deep_link_return():
            config = outer._config()
            config.get_registration()
            outer.deep_linked.extend(config.validate_deeplinking_resp(request.form.to_dict()))
            return "<h1>Content received</h1>"

        @app.route("/auth", methods=["GET", "POST"])
        def auth():
            return Launch(_FlaskRequest(request), outer._config()).lti_launch()

        @app.get("/jwks")
        def jwks():
            config = outer._config()
            config.get_registration()
            return jsonify(config.get_jwks())

        return app
