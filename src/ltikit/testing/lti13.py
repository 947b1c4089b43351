"""Test an LTI 1.3 tool without a platform: a test platform key, id_tokens signed with it,
and the login and launch run through a Flask test client.

The id_token is signed with PyJWT and an RSA key made here, the way a platform signs it;
the tool verifies it with its own code, so a view that passes here sees what it would see
on a real launch::

    from ltikit.testing.lti13 import TestPlatform

    platform = TestPlatform()
    platform.register(kit.registrations)          # kit = LTIKit(app)
    client = app.test_client()
    page = platform.launch(client, "https://tool.example.edu/launch", roles=["Learner"])
    assert page.status_code == 200

Roles may be given short (``"Instructor"``, ``"Learner"``: context roles) or as full
vocabulary URIs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

    from ..lti13.registrations import Registrations

__all__ = ["CLAIM", "TestPlatform"]

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_OIDC_CLAIMS = frozenset({"iss", "aud", "azp", "sub", "exp", "iat", "nonce", "name",
                          "given_name", "family_name", "middle_name", "email", "picture",
                          "locale"})


class TestPlatform:
    """A platform for tests: its issuer, the tool's client id and deployment there, and a
    signing key (a new 2048-bit RSA key per instance)."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, *, issuer: str = "https://platform.example.edu",
                 client_id: str = "test-client", deployment_id: str = "1:test",
                 kid: str | None = None) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.kid = kid or uuid.uuid4().hex
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwk(self) -> dict[str, Any]:
        """The platform's public key as a JWK (what its JWKS URL would publish)."""
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(),
                                                                as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def register(self, registrations: Registrations, **options: Any) -> int:
        """Register this platform with the tool (its key given inline, no JWKS URL to
        fetch); ``options`` go to :meth:`Registrations.add`.  Returns the registration id."""
        return registrations.add(**{
            "name": "Test platform", "issuer": self.issuer, "client_id": self.client_id,
            "auth_login_url": self.issuer + "/auth", "token_url": self.issuer + "/token",
            "public_jwk": self.jwk, "deployments": (self.deployment_id,), **options})

    # -- messages -----------------------------------------------------------------------
    def claims(self, *, nonce: str, target_link_uri: str,
               message_type: str = "LtiResourceLinkRequest",
               roles: Sequence[str] = ("Instructor",), **overrides: Any) -> dict[str, Any]:
        """The claims of a launch by a teacher of "Introduction to Biology"; ``overrides``
        replace claims (full claim names; short LTI claim names such as ``custom`` or
        ``context`` are prefixed), and ``None`` removes one."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "azp": self.client_id,
            "sub": "a6d5c443-1f51-4783-ba1a-7686ffe3b54a", "iat": now, "exp": now + 300,
            "nonce": nonce, "name": "Ada Teacher", "given_name": "Ada",
            "family_name": "Teacher", "email": "ada@example.edu",
            CLAIM + "message_type": message_type, CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "target_link_uri": target_link_uri,
            CLAIM + "roles": [r if ":" in r else _MEMBERSHIP + r for r in roles],
            CLAIM + "context": {"id": "ctx-1", "label": "BIO101",
                                "title": "Introduction to Biology"},
        }
        if message_type == "LtiResourceLinkRequest":
            claims[CLAIM + "resource_link"] = {"id": "rl-1", "title": "Example tool"}
        for name, value in overrides.items():
            full = name if "://" in name or name in _OIDC_CLAIMS else CLAIM + name
            if value is None:
                claims.pop(full, None)
            else:
                claims[full] = value
        return claims

    def id_token(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """``claims`` signed with the platform's key (RS256, its ``kid`` in the header)."""
        return jwt.encode(dict(claims), self._key, algorithm="RS256",
                          headers={"kid": kid or self.kid})

    # -- a whole launch through a Flask test client ---------------------------------------
    def launch(self, client: FlaskClient, target_link_uri: str, *,
               login_path: str = "/lti13/login", **claims: Any) -> TestResponse:
        """Run the OIDC login and the id_token POST against the app of ``client`` the way
        a browser inside the platform does, and return the tool's answer to the launch.

        ``target_link_uri`` is the full URL of the launch (its origin is the tool's); the
        client keeps the tool's state cookie between the two steps.  ``claims``: as for
        :meth:`claims` (``roles=["Learner"]``, ``custom={...}``, ``message_type=...``)."""
        tool = urlsplit(target_link_uri)
        base_url = f"{tool.scheme}://{tool.netloc}"
        login = client.get(login_path, base_url=base_url, query_string={
            "iss": self.issuer, "login_hint": "hint", "target_link_uri": target_link_uri,
            "client_id": self.client_id, "lti_message_hint": uuid.uuid4().hex})
        location = login.headers.get("Location", "")
        if login.status_code != 302 or not location.startswith(self.issuer + "/auth"):
            raise AssertionError(f"the tool's login did not redirect to the platform "
                                 f"(HTTP {login.status_code}): {login.get_data(as_text=True)}")
        auth = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        token = self.id_token(self.claims(nonce=auth["nonce"], target_link_uri=target_link_uri,
                                          **claims))
        redirect_uri = urlsplit(auth["redirect_uri"])
        return client.post(redirect_uri.path, base_url=base_url,
                           query_string=redirect_uri.query or None,
                           data={"id_token": token, "state": auth["state"]})
