"""A throw-away launcher for trying the example app on a laptop, until `ltikit platform`
(the full local LMS stand-in) exists.  It signs real LTI 1.1 launches with oauthlib, as a
platform would, and opens the tool in an iframe.  Never deploy it.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template_string, request

from ltikit.testing import launch_params, sign_launch

PEOPLE = {
    "teacher": {"user_id": "teacher-1", "roles": "Instructor",
                "lis_person_name_full": "Ada Teacher", "lis_person_sourcedid": "ada"},
    "ta": {"user_id": "ta-1", "roles": "TeachingAssistant",
           "lis_person_name_full": "Tom Assistant", "lis_person_sourcedid": "tom"},
    "student": {"user_id": "student-1", "roles": "Learner",
                "lis_person_name_full": "Sam Student", "lis_person_sourcedid": "sam"},
}
TARGETS = ("/any", "/initial", "/staff")

PAGE = """<!doctype html><title>ltikit dev launcher</title>
<style>body{font-family:system-ui,sans-serif;margin:1rem}iframe{width:100%;height:24rem;
border:1px solid #888}form{display:inline}</style>
<h1>Dev launcher</h1><p>Signed LTI 1.1 launches of the example app, in the frame below.</p>
{% for who in people %}<p><b>{{ who }}</b>:
{% for target in targets %}<form method=get action="{{ url_for('dev.launch') }}" target=tool>
<input type=hidden name=who value="{{ who }}"><input type=hidden name=to value="{{ target }}">
<button>{{ target }}</button></form>{% endfor %}</p>{% endfor %}
<iframe name=tool title="tool"></iframe>"""

FORM = """<!doctype html><title>Launching…</title>
<form id=f method=post action="{{ url }}">{% for k, v in fields %}
<input type=hidden name="{{ k }}" value="{{ v }}">{% endfor %}</form>
<script>document.getElementById('f').submit()</script>"""


def make_blueprint(key: str, secret: str) -> Blueprint:
    bp = Blueprint("dev", __name__)

    @bp.route("/")
    def index():
        return render_template_string(PAGE, people=PEOPLE, targets=TARGETS)

    @bp.route("/_dev/launch")
    def launch():
        who, target = request.args.get("who"), request.args.get("to")
        if who not in PEOPLE or target not in TARGETS:
            abort(400)
        url = request.host_url.rstrip("/") + target
        signed = sign_launch(url, launch_params(**PEOPLE[who]), key=key, secret=secret)
        from urllib.parse import parse_qsl

        return render_template_string(FORM, url=url, fields=parse_qsl(signed.body))

    return bp
