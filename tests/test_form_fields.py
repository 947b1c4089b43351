"""The Flask adapter reads urlencoded bodies and query strings itself
(``translate.form_fields`` and ``query_fields``, fast paths on the launch path and later
pages): they must give exactly what Werkzeug's ``request.form`` and ``request.args`` give."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from ltikit.errors import LTIMalformedRequest
from ltikit.flask.translate import form_fields, query_fields


def request_with(body: bytes) -> Request:
    environ = EnvironBuilder(method="POST", path="/launch",
                             content_type="application/x-www-form-urlencoded").get_environ()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return Request(environ)


def werkzeugs(body: bytes) -> tuple[tuple[str, str], ...]:
    return tuple(request_with(body).form.items(multi=True))


def ours(body: bytes) -> tuple[tuple[str, str], ...]:
    request = request_with(body)
    request.get_data(cache=True)  # as the adapter's size check reads it first
    return form_fields(request)


pieces = st.one_of(
    st.text(max_size=12), st.sampled_from(["=", "&", ";", "+", "%", "%2", "%zz", "%e9",
                                           "%C3%A9", "%00", "==", "&&", "%26", "%3D"]),
    st.binary(max_size=6).map(lambda b: quote(b, safe="")),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(pieces, max_size=16).map("".join).map(str.encode))
def test_urlencoded_bodies_read_as_werkzeug_reads_them(body):
    assert ours(body) == werkzeugs(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_even_not_utf8(body):
    assert ours(body) == werkzeugs(body)


def test_a_launch_sized_body_and_a_form_already_parsed():
    body = "&".join(f"field_{i}={quote('välue ' * 3)}" for i in range(30)).encode()
    assert ours(body) == werkzeugs(body) and len(ours(body)) == 30
    parsed = request_with(body)
    assert parsed.form  # a before_request hook read the form first
    assert form_fields(parsed) == werkzeugs(body)


def request_to(query: bytes) -> Request:
    environ = EnvironBuilder(path="/page").get_environ()
    environ["QUERY_STRING"] = query.decode("latin-1")  # as a WSGI server passes it
    return Request(environ)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(pieces, max_size=16).map("".join).map(str.encode),
                 st.binary(max_size=48)))
def test_query_strings_read_as_werkzeug_reads_them(query):
    try:
        expected = tuple(request_to(query).args.items(multi=True))
    except UnicodeDecodeError:  # Werkzeug raises (a 500): ltikit refuses with a 400
        with pytest.raises(LTIMalformedRequest):
            query_fields(request_to(query))
        return
    assert query_fields(request_to(query)) == expected
    parsed = request_to(query)
    assert parsed.args is not None and query_fields(parsed) == expected
