"""ltikit's itsdangerous signers (ltikit.signing) agree with itsdangerous's own.

They derive keys once and compute the HMAC with the standard library's one-shot
``hmac.digest``; itsdangerous stays the reference.  If these properties fail, the fast path
is wrong, not itsdangerous.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer, TimestampSigner, URLSafeTimedSerializer

from ltikit.signing import CachedKeySigner, CachedKeyTimestampSigner, TimedTokenSerializer

keys = st.one_of(st.binary(min_size=1, max_size=64), st.text(min_size=1, max_size=32))
values = st.one_of(st.binary(max_size=200), st.text(max_size=100))
salts = st.sampled_from(["ltikit.launch-id", "itsdangerous.Signer", "x"])
digests = st.sampled_from([None, hashlib.sha256, hashlib.sha512])


@settings(max_examples=300, deadline=None)
@given(key=keys, value=values, salt=salts, digest=digests)
def test_tokens_are_itsdangerous_tokens_both_ways(key, value, salt, digest):
    ours = CachedKeySigner(key, salt=salt, digest_method=digest)
    stock = Signer(key, salt=salt, digest_method=digest)
    assert ours.sign(value) == stock.sign(value)
    assert ours.unsign(stock.sign(value)) == stock.unsign(ours.sign(value))


@settings(max_examples=200, deadline=None)
@given(key=keys, other=keys, value=values)
def test_a_token_of_another_key_or_a_changed_token_is_refused(key, other, value):
    ours = CachedKeySigner(key, salt="s")
    token = Signer(other, salt="s").sign(value)
    if Signer(key, salt="s").sign(value) != token:
        with pytest.raises(BadSignature):
            ours.unsign(token)
    # The signature's first character (its last one may carry only padding bits).
    signed, _, signature = ours.sign(value).rpartition(b".")
    mangled = signed + b"." + (b"A" if signature[:1] != b"A" else b"B") + signature[1:]
    with pytest.raises(BadSignature):
        ours.unsign(mangled)
    with pytest.raises(BadSignature):
        Signer(key, salt="s").unsign(mangled)


@settings(max_examples=100, deadline=None)
@given(new=keys, old=keys, value=values)
def test_rotated_keys_still_verify_tokens_of_the_old_key(new, old, value):
    token = Signer(old, salt="s").sign(value)
    assert CachedKeySigner([old, new], salt="s").unsign(token) == \
        Signer([old, new], salt="s").unsign(token)


@settings(max_examples=100, deadline=None)
@given(key=keys, value=values)
def test_timed_tokens_agree(key, value):
    assert CachedKeyTimestampSigner(key).unsign(TimestampSigner(key).sign(value)) == \
        TimestampSigner(key).unsign(CachedKeyTimestampSigner(key).sign(value))


@settings(max_examples=100, deadline=None)
@given(key=keys, payload=st.dictionaries(st.text(max_size=10), st.integers(), max_size=5))
def test_serialized_tokens_agree(key, payload):
    assert URLSafeTimedSerializer(key).loads(TimedTokenSerializer(key).dumps(payload)) == payload
    assert TimedTokenSerializer(key).loads(URLSafeTimedSerializer(key).dumps(payload)) == payload


def test_undecodable_signatures_are_refused():
    for token in (b"value.", b"value.%%%", b"value.\xff\xfe", "value.é"):
        with pytest.raises(BadSignature):
            CachedKeySigner("k").unsign(token)
