"""One outbound call, two drivers: the same steps (``ltikit._http``) sent by ``requests``
(Flask, scripts) and awaited on httpx's async client (FastAPI), against a real server.
Both must give the steps the same answer, or the same failure, for every way a platform
can misbehave: too slow, too big, a redirect, a closed port, Moodle's Link headers."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
import requests
from flask import Flask, Response, jsonify

from browser import serve
from ltikit import _http, _http_async
from ltikit.lti13.services import links
from servers import free_port

DRIVERS = ["requests", "httpx"]


def drive(driver, steps):
    if driver == "requests":
        return _http.run(steps)

    async def main():
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await _http_async.run(steps, client)

    return anyio.run(main)


def get(url, **fields):
    fields = {"connect_timeout": 2.0, "total_timeout": 5.0} | fields
    return _http.request("GET", url, **fields)


@pytest.fixture(scope="module")
def platform():
    app = Flask("misbehaving_platform")

    @app.get("/json")
    def json_answer():
        return jsonify({"keys": []})

    @app.get("/trickle")
    def trickle():
        def body():
            for _ in range(20):  # a byte every 0.2 s: each read is quick, the whole is not
                time.sleep(0.2)
                yield b" "
        return Response(body(), mimetype="application/json")

    @app.get("/big")
    def big():
        return Response(b"x" * (2 << 20), mimetype="application/octet-stream")

    @app.get("/moved")
    def moved():
        return Response("", status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"})

    @app.get("/moodle-page")
    def moodle_page():
        # Moodle 4.5's AGS Link header: UTF-8 typographic quotes and &amp; (sent as bytes).
        link = "<http://x.test/lineitems?limit=1&amp;from=1>; rel=\u201cnext\u201d"
        return Response("[]", mimetype="application/json",
                        headers={"Link": link.encode().decode("latin-1")})

    @app.post("/echo")
    def echo():
        from flask import request
        return jsonify({"form": request.form.to_dict(), "type": request.content_type})

    with serve(app) as url:
        yield url


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_answer_reaches_the_steps_the_same_way(driver, platform):
    response = drive(driver, get(f"{platform}/json"))
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_form_is_posted_form_encoded(driver, platform):
    response = drive(driver, _http.request("POST", f"{platform}/echo", connect_timeout=2.0,
                                           total_timeout=5.0, data={"grant_type": "x y"}))
    assert response.json() == {"form": {"grant_type": "x y"},
                               "type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_trickling_answer_ends_at_the_deadline(driver, platform):
    started = time.monotonic()
    with pytest.raises(_http.DeadlineExceeded):
        drive(driver, get(f"{platform}/trickle", total_timeout=1.0))
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_body_over_the_limit_is_refused(driver, platform):
    with pytest.raises(_http.BodyTooLarge):
        drive(driver, get(f"{platform}/big", max_bytes=1 << 20))


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_redirect_is_answered_not_followed(driver, platform):
    response = drive(driver, get(f"{platform}/moved"))
    assert response.status_code == 302
    assert response.is_redirect


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_closed_port_is_a_connection_error(driver):
    with pytest.raises(requests.ConnectionError):
        drive(driver, get(f"http://127.0.0.1:{free_port()}/jwks"))


@pytest.mark.parametrize("driver", DRIVERS)
def test_moodles_link_header_reads_the_same(driver, platform):
    response = drive(driver, get(f"{platform}/moodle-page"))
    assert links(response) == {"next": "http://x.test/lineitems?limit=1&from=1"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_steps_see_the_failure_and_go_on(driver, platform):
    """A failure is thrown into the steps where they asked: they may handle it and call
    again (as a 401 leads to a new token), and their value is the driver's answer."""

    failures = []

    def steps():
        try:
            yield from get(f"http://127.0.0.1:{free_port()}/down")
        except requests.ConnectionError as exc:
            failures.append(exc)
        yield _http.Pause(0.01)
        second = yield from get(f"{platform}/json")
        return second.status_code

    assert drive(driver, steps()) == 200
    assert len(failures) == 1
