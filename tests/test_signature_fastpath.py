"""The launch path's signature base string agrees with oauthlib's on random requests.

ltikit normalises parameters itself for speed (see ``ltikit.lti11.signature``); oauthlib
stays the reference.  If these properties fail, the fast path is wrong, not oauthlib.
"""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, Client
from oauthlib.oauth1.rfc5849 import signature as oauthlib_signature
from oauthlib.oauth1.rfc5849 import utils as oauthlib_utils

from ltikit.lti11.signature import OAuthRequest, escape, signature_base_string, verify_signature

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
# oauthlib decodes oauth_* values a second time even outside the header (see the module
# docstring of ltikit.lti11.signature); values without "%" are where both readings agree.
oauth_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="%"),
                     min_size=1, max_size=20)
plain_name = text.filter(lambda s: not s.startswith("oauth_") and s != "realm")
params = st.lists(st.tuples(plain_name, text), max_size=8)
oauth_params = st.dictionaries(st.sampled_from(["oauth_consumer_key", "oauth_nonce",
                                                "oauth_timestamp", "oauth_signature_method",
                                                "oauth_version", "oauth_callback"]),
                               oauth_text, max_size=6)
hosts = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(\.[A-Za-z]{2,5}){0,2}", fullmatch=True)
paths = st.lists(st.from_regex(r"[A-Za-z0-9._~-]{0,8}", fullmatch=True), max_size=3) \
    .map(lambda parts: "/" + "/".join(parts))
urls = st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
                 st.sampled_from(["http", "https", "HTTPS"]), hosts,
                 st.sampled_from(["", ":80", ":443", ":8080"]), paths)
methods = st.sampled_from(["GET", "POST", "post", "Put"])


def oauthlib_base_string(method, url, query, form, header):
    full_url = url + ("?" + urlencode(query) if query else "")
    collected = oauthlib_signature.collect_parameters(
        uri_query=urlencode(query), body=list(form),
        headers={"Authorization": header} if header else None)
    return oauthlib_signature.signature_base_string(
        method, oauthlib_signature.base_string_uri(full_url),
        oauthlib_signature.normalize_parameters(collected))


def authorization_header(oauth: dict[str, str]) -> str | None:
    if not oauth:
        return None
    return "OAuth " + ", ".join(f'{k}="{oauthlib_utils.escape(v)}"' for k, v in oauth.items())


@settings(max_examples=400, deadline=None)
@given(method=methods, url=urls, query=params, form=params, oauth=oauth_params,
       in_header=st.booleans())
def test_base_string_matches_oauthlib(method, url, query, form, oauth, in_header):
    header = authorization_header(oauth) if in_header else None
    form = form if in_header else [*form, *oauth.items()]
    request = OAuthRequest(method=method, url=url, query=query, form=form,
                           authorization=header)
    ours = signature_base_string(method, url, request.all_params())
    assert ours == oauthlib_base_string(method, url, query, form, header)


@settings(max_examples=300, deadline=None)
@given(value=text)
def test_escape_matches_oauthlib(value):
    assert escape(value) == oauthlib_utils.escape(value)


@settings(max_examples=150, deadline=None)
@given(url=urls, body=st.lists(st.tuples(plain_name, text), min_size=1, max_size=8),
       secret=oauth_text, nonce=st.from_regex(r"[A-Za-z0-9]{8,32}", fullmatch=True))
def test_what_oauthlib_signs_verifies_and_any_change_does_not(url, body, secret, nonce):
    client = Client("key", client_secret=secret, signature_type=SIGNATURE_TYPE_BODY,
                    nonce=nonce, timestamp="1700000000")
    _, _, signed_body = client.sign(url, "POST", body=body,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    from urllib.parse import parse_qsl

    form = parse_qsl(signed_body, keep_blank_values=True)
    oauth = dict(p for p in form if p[0].startswith("oauth_"))
    request = OAuthRequest("POST", url, (), form)
    verify_signature(request, request.all_params(), oauth["oauth_signature_method"],
                     oauth["oauth_signature"], secret)

    import pytest

    from ltikit.errors import LTIAuthenticationError

    name, value = form[0]
    changed = [(name, value + "x"), *form[1:]]
    with pytest.raises(LTIAuthenticationError):
        tampered = OAuthRequest("POST", url, (), changed)
        verify_signature(tampered, tampered.all_params(), oauth["oauth_signature_method"],
                         oauth["oauth_signature"], secret)
