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


def grouped(pairs) -> list[tuple[str, list[str]]]:
    """Each name with its values in order, names in the order they first come: what a
    MultiDict keeps (it groups a repeated name's values; the fast path keeps the pairs in
    the order they came, which the OAuth base string sorts anyway)."""
    names: dict[str, list[str]] = {}
    for name, value in pairs:
        names.setdefault(name, []).append(value)
    return list(names.items())


def werkzeugs(body: bytes) -> list[tuple[str, list[str]]]:
    return list(request_with(body).form.to_dict(flat=False).items())


def ours(body: bytes) -> list[tuple[str, list[str]]]:
    request = request_with(body)
    request.get_data(cache=True)  # as the adapter's size check reads it first
    return grouped(form_fields(request))


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
    assert grouped(form_fields(parsed)) == werkzeugs(body)


def test_repeated_names_keep_the_order_they_came_in():
    assert form_fields(request_with(b"a=1&b=2&a=3")) == (("a", "1"), ("b", "2"), ("a", "3"))
    assert ours(b"a=1&b=2&a=3") == werkzeugs(b"a=1&b=2&a=3") == [("a", ["1", "3"]),
                                                                 ("b", ["2"])]


def request_to(query: bytes) -> Request:
    environ = EnvironBuilder(path="/page").get_environ()
    environ["QUERY_STRING"] = query.decode("latin-1")  # as a WSGI server passes it
    return Request(environ)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(pieces, max_size=16).map("".join).map(str.encode),
                 st.binary(max_size=48)))
def test_query_strings_read_as_werkzeug_reads_them(query):
    try:
        expected = list(request_to(query).args.to_dict(flat=False).items())
    except UnicodeDecodeError:  # Werkzeug raises (a 500): ltikit refuses with a 400
        with pytest.raises(LTIMalformedRequest):
            query_fields(request_to(query))
        return
    assert grouped(query_fields(request_to(query))) == expected
    parsed = request_to(query)
    assert parsed.args is not None and grouped(query_fields(parsed)) == expected
