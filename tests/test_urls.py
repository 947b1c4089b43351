"""URL origins are read the way browsers and ``requests`` (urllib3) read them, or not at all.

The cases below are the ones where readers disagree (``\\``, user info, escapes in the host,
whitespace); hypothesis then throws arbitrary text at the reader: it never raises, and any
origin it gives is the host and port urllib3 would connect to.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from ltikit.urls import Origin, origin, same_origin, secure_origin


@pytest.mark.parametrize(("url", "expected"), [
    ("https://tool.example.edu/launch", Origin("https", "tool.example.edu", 443)),
    ("HTTPS://Tool.Example.EDU:443/x?y#z", Origin("https", "tool.example.edu", 443)),
    ("http://localhost:8000", Origin("http", "localhost", 8000)),
    ("http://[::1]:8000/x", Origin("http", "::1", 8000)),
    ("http://127.0.0.1/x\\y?q=a\\b", Origin("http", "127.0.0.1", 80)),  # \ after the host
])
def test_plain_urls_have_their_origin(url, expected):
    assert origin(url) == expected


@pytest.mark.parametrize("url", [
    "http://evil.example\\@tool.example.edu/launch",   # browsers, urllib3: evil.example
    "http://evil.example\\.tool.example.edu/launch",
    "http://tool.example.edu@evil.example/",           # user info
    "http://t%6Fol.example.edu/",                      # urllib3 and browsers decode it
    "http://tool.example.edu\t.evil.example/",         # browsers drop tabs
    "http://tool.example.edu /",
    " http://tool.example.edu/",
    "http://tööl.example.edu/",                         # hosts in their ASCII form only
    "http://tool.example.edu:99999/",
    "http://tool.example.edu:0/",
    "http://tool.example.edu:x/",
    "javascript://tool.example.edu/%0aalert(1)",
    "//tool.example.edu/",
    "/relative",
    "http:///nohost",
    "",
    None,
    42,
])
def test_urls_readers_could_disagree_about_have_no_origin(url):
    assert origin(url) is None
    assert not same_origin(url, "http://tool.example.edu/")


def test_same_origin_fills_in_default_ports_and_ignores_case():
    assert same_origin("https://Tool.example.edu/a", "https://tool.example.edu:443/b")
    assert not same_origin("https://tool.example.edu/", "http://tool.example.edu/")
    assert not same_origin("https://tool.example.edu/", "https://tool.example.edu:8443/")


def test_secure_origins_are_https_or_this_machine():
    assert secure_origin("https://p.example.edu/x")
    assert secure_origin("http://localhost:8000/x") and secure_origin("http://127.0.0.1/x")
    assert secure_origin("http://[::1]:9/x")
    assert secure_origin("http://p.example.edu/x") is None
    assert secure_origin("http://localhost.evil.example/x") is None


URL_PARTS = st.text(alphabet=st.sampled_from("ab.:@/\\?#%[]1 \t-_~é"),
                    max_size=24)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]), URL_PARTS,
       URL_PARTS)
def test_any_text_gets_no_origin_or_the_one_urllib3_connects_to(scheme, authority, rest):
    url = scheme + authority + rest
    found = origin(url)  # never raises
    if found is not None:
        theirs = parse_url(url)
        assert (theirs.host or "").lower().strip("[]") == found.host
        assert (theirs.port or {"http": 80, "https": 443}[found.scheme]) == found.port
        assert "\\" not in authority.split("/")[0].split("?")[0].split("#")[0]
