"""A PyLTI Flask app, written the way PyLTI's documentation shows, moved to ltikit.

The only lines changed from the PyLTI version are the two imports marked ``# ltikit``:
``from pylti.flask import lti`` became ``from ltikit.flask import lti``, and
``pylti.common`` became ``ltikit.errors``.  Everything else, including ``PYLTI_CONFIG``
and the error callback, is PyLTI's interface.
"""

import os

from flask import Flask, render_template_string, request

from ltikit.errors import LTIPostMessageException  # ltikit (was: from pylti.common import ...)
from ltikit.flask import lti  # ltikit (was: from pylti.flask import lti)

app = Flask(__name__)
app.secret_key = os.environ.get("SECRET_KEY", "change-me-in-production")
app.config["PYLTI_CONFIG"] = {
    "consumers": {
        os.environ.get("CONSUMER_KEY", "__consumer_key__"): {
            "secret": os.environ.get("SHARED_SECRET", "__lti_secret__"),
        }
    }
}

PAGE = """<!doctype html><title>{{ title }}</title>
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if lti %}<p>Roles: {{ lti.role }} · staff: {{ lti.is_role('staff') }}</p>
<p><a href="{{ url_for('session_route') }}">A later page of this launch</a>
 · <a href="{{ url_for('grade') }}">Send a grade of 0.8</a>
 · <a href="{{ url_for('close') }}">Close the session</a></p>{% endif %}
"""


def page(title, message, lti=None):
    return render_template_string(PAGE, title=title, message=message, lti=lti)


def error(exception=None):
    """PyLTI's error callback contract: exception={'exception', 'kwargs', 'args'}."""
    return page("LTI error", str(exception["exception"]))


@app.route("/any", methods=["GET", "POST"])
@lti(error=error, request="any", app=app)
def any_route(lti):
    """Works for the launch itself and for later requests of the same launch."""
    return page("Landing page", f"Hello {lti.name}", lti)


@app.route("/initial", methods=["GET", "POST"])
@lti(error=error, request="initial", app=app)
def initial_route(lti):
    return page("Initial request", f"Launched by {lti.name}", lti)


@app.route("/session", methods=["GET", "POST"])
@lti(error=error, request="session", app=app)
def session_route(lti):
    return page("Session request", f"Still {lti.name}", lti)


@app.route("/staff", methods=["GET", "POST"])
@lti(error=error, request="any", role="staff", app=app)
def staff_route(lti):
    return page("Staff only", f"Welcome, staff member {lti.name}", lti)


@app.route("/grade")
@lti(error=error, request="session", app=app)
def grade(lti):
    try:
        lti.post_grade(float(request.args.get("score", "0.8")))
    except LTIPostMessageException as exc:
        return page("Grade not sent", str(exc), lti), 502
    return page("Grade sent", "Thank you", lti)


@app.route("/close")
@lti(error=error, request="session", app=app)
def close(lti):
    lti.close_session()
    return page("Session closed", "Goodbye")


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "5000")))
