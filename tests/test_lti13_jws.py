"""``ltikit.lti13.jws`` (the launch path's one-parse JWS reader) agrees with PyJWT.

PyJWT is the reference: for generated tokens (valid, expired, with odd claim values,
re-padded, tampered, re-signed with another algorithm, or plain junk), ``jws.verify`` must
accept exactly what ``jwt.decode`` accepts, return the same claims, and refuse a token
with the same exception class wherever the two check the same thing.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from ltikit.lti13 import jws

ISS, CLIENT, LEEWAY = "https://platform.example.edu", "10000000000042", 5
REQUIRE = ("exp", "iat", "iss", "aud", "nonce")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
KEYS = {"RS256": RSA_KEY, "PS256": RSA_KEY, "ES256": EC_KEY}
MISSING = object()

# Clock offsets far from any boundary, so the two sides' "now" (read microseconds apart)
# cannot disagree.
times = st.sampled_from([-100_000, -600, 600, 100_000]).map(lambda d: int(time.time()) + d)
odd = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.integers(), st.floats(),
                st.lists(st.integers(), max_size=2), st.just("1700000000"))
claim_values = {
    "iss": st.one_of(st.just(ISS), st.just("https://evil.example.com"), odd),
    "aud": st.one_of(st.just(CLIENT), st.just([CLIENT]), st.just(["other", CLIENT]),
                     st.just("other"), st.just([]), st.just([CLIENT, 7]), odd),
    "exp": st.one_of(times, odd), "iat": st.one_of(times, odd), "nbf": st.one_of(times, odd),
    "nonce": st.one_of(st.just("n-1"), st.just(""), odd),
    "sub": st.one_of(st.just("user-1"), odd), "jti": st.one_of(st.just("j-1"), odd),
}


@st.composite
def payloads(draw):
    payload = {"extra": draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))}
    now = int(time.time())
    valid = {"iss": ISS, "aud": CLIENT, "exp": now + 600, "iat": now - 600, "nbf": MISSING,
             "nonce": "n-1", "sub": "user-1", "jti": MISSING}
    for name, values in claim_values.items():
        # Mostly the valid value, so that accepted tokens are common enough.
        value = valid[name] if draw(st.integers(0, 9)) < 6 else \
            draw(st.one_of(values, st.just(MISSING)))
        if value is not MISSING:
            payload[name] = value
    return payload


def sign(payload: dict, algorithm: str) -> str:
    # By hand: jwt.encode refuses some of the odd claim values a platform might still send.
    header = b64(json.dumps({"alg": algorithm, "typ": "JWT", "kid": "k1"}).encode())
    signing_input = f"{header}.{b64(json.dumps(payload).encode())}".encode()
    signer = get_default_algorithms()[algorithm]
    return f"{signing_input.decode()}.{b64(signer.sign(signing_input, KEYS[algorithm]))}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mutate(token: str, how: str, draw) -> str:
    header, payload, signature = token.split(".")
    if how == "repad":  # '=' padding, which PyJWT accepts where it completes a group
        return ".".join(s + "=" * draw(st.integers(0, 3)) for s in (header, payload, signature))
    if how == "flip":
        i = draw(st.integers(0, len(token) - 1))
        return token[:i] + draw(st.sampled_from("A_-=.!+/ ")) + token[i + 1:]
    if how == "swap-payload":
        other = b64(json.dumps({"iss": ISS, "aud": CLIENT, "exp": 9e9, "iat": 1, "nonce": "x"})
                    .encode())
        return f"{header}.{other}.{signature}"
    if how == "header":
        new = draw(st.sampled_from([{"alg": "none"}, {"alg": "HS256"}, {"alg": "RS256", "kid": 5},
                                    {"alg": "RS256", "crit": ["b64"], "b64": True}, {}, []]))
        return f"{b64(json.dumps(new).encode())}.{payload}.{signature}"
    if how == "junk":
        return draw(st.text(max_size=40))
    return token


@st.composite
def tokens(draw):
    algorithm = draw(st.sampled_from(sorted(KEYS)))
    signed_as = draw(st.sampled_from([algorithm] * 4 + sorted(KEYS)))
    payload = draw(payloads())
    token = sign(payload, signed_as)
    how = draw(st.sampled_from(["as is"] * 5 + ["repad", "flip", "swap-payload", "header",
                                                 "junk"]))
    return algorithm, mutate(token, how, draw)


def by_pyjwt(token: str, algorithm: str):
    try:
        return "ok", jwt.decode(token, KEYS[algorithm].public_key(), algorithms=[algorithm],
                                audience=CLIENT, issuer=ISS, leeway=LEEWAY,
                                options={"require": list(REQUIRE)})
    except jwt.PyJWTError as exc:
        return "refused", type(exc)


def by_ltikit(token: str, algorithm: str):
    try:
        return "ok", jws.verify(jws.parse(token), KEYS[algorithm].public_key(), algorithm,
                                audience=CLIENT, issuer=ISS, leeway=LEEWAY, require=REQUIRE)
    except jwt.PyJWTError as exc:
        return "refused", type(exc)


# Before the signature is checked the two may name a broken token's first fault
# differently (PyJWT checks the signature before reading the claims as JSON); after it,
# the same check must fail the same way.
STRUCTURAL = (jwt.DecodeError, jwt.InvalidSignatureError, jwt.InvalidAlgorithmError)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_the_fast_path_agrees_with_pyjwt(case):
    algorithm, token = case
    expected, got = by_pyjwt(token, algorithm), by_ltikit(token, algorithm)
    if got[0] == "ok" or expected[0] == "ok":
        assert got == expected
    elif not (issubclass(expected[1], STRUCTURAL) and issubclass(got[1], STRUCTURAL)):
        assert got[1] is expected[1] or (
            # Tokens with crit/b64 headers: ltikit refuses them outright (stricter).
            got[1] is jwt.DecodeError and "crit" in _header(token))


def _header(token: str) -> dict:
    try:
        return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    except Exception:
        return {}


def test_valid_tokens_are_accepted_with_their_claims():
    now = int(time.time())
    claims = {"iss": ISS, "aud": [CLIENT, "x"], "exp": now + 60, "iat": now, "nonce": "n"}
    for algorithm, key in KEYS.items():
        token = jwt.encode(claims, key, algorithm=algorithm)
        assert by_ltikit(token, algorithm) == ("ok", claims) == by_pyjwt(token, algorithm)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "e30.e30.", "e30=.e30.", "!!.e30.",
                                   "W10.e30.", "e30.W10."])
def test_broken_tokens_are_decode_errors(token):
    with pytest.raises(jwt.PyJWTError):
        jws.parse(token) and jws.verify(jws.parse(token), RSA_KEY.public_key(), "RS256",
                                        audience=CLIENT, issuer=ISS)
