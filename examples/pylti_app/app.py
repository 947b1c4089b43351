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


def error(exception=None):
    """PyLTI's error callback contract: exception={'exception', 'kwargs', 'args'}."""
    return render_template_string(PAGE, title="LTI error", lti=None,
                                  message=str(exception["exception"]))


@app.route("/any", methods=["GET", "POST"])
@lti(error=error, request="any", app=app)
def any_route(lti):
    """Works for the launch itself and for later requests of the same launch."""
    return render_template_string(PAGE, title="Landing page", lti=lti,
                                  message=f"Hello {lti.name}")


@app.route("/initial", methods=["GET", "POST"])
@lti(error=error, request="initial", app=app)
def initial_route(lti):
    return render_template_string(PAGE, title="Initial request", lti=lti,
                                  message=f"Launched by {lti.name}")


@app.route("/session", methods=["GET", "POST"])
@lti(error=error, request="session", app=app)
def session_route(lti):
    return render_template_string(PAGE, title="Session request", lti=lti,
                                  message=f"Still {lti.name}")


@app.route("/staff", methods=["GET", "POST"])
@lti(error=error, request="any", role="staff", app=app)
def staff_route(lti):
    return render_template_string(PAGE, title="Staff only", lti=lti,
                                  message=f"Welcome, staff member {lti.name}")


@app.route("/grade")
@lti(error=error, request="session", app=app)
def grade(lti):
    try:
        lti.post_grade(float(request.args.get("score", "0.8")))
    except LTIPostMessageException as exc:
        return render_template_string(PAGE, title="Grade not sent", lti=lti,
                                      message=str(exc)), 502
    return render_template_string(PAGE, title="Grade sent", lti=lti, message="Thank you")


@app.route("/close")
@lti(error=error, request="session", app=app)
def close(lti):
    lti.close_session()
    return render_template_string(PAGE, title="Session closed", lti=None, message="Goodbye")


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "5000")))
