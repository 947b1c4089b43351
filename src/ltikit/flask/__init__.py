"""Flask adapter: the :class:`LTIKit` extension, the PyLTI-compatible ``lti`` decorator,
and the ``current_lti`` proxy.

This is the only package of ltikit that imports Flask.  Migrating from PyLTI is a change
of import::

    from ltikit.flask import lti        # was: from pylti.flask import lti

    @app.route('/launch', methods=['POST'])
    @lti(error=error, request='initial', role='staff', app=app)
    def launch(lti):
        return render_template('index.html', name=lti.name)

Apps that want more than PyLTI offered create the extension explicitly
(``LTIKit(app)`` or ``init_app`` in an app factory); otherwise it is created on first use
from ``app.config``.  See ``CONFIG_DEFAULTS`` for the settings.
"""

from __future__ import annotations

from ..errors import (
    LTIException,
    LTIMalformedRequest,
    LTINotInSessionException,
    LTIPostMessageException,
    LTIRoleException,
)
from .decorator import current_lti, lti
from .extension import CONFIG_DEFAULTS, LTIKit
from .extension import _AppState as _AppState
from .pages import default_error, error_page
from .view import LTI

__all__ = [
    "CONFIG_DEFAULTS", "LTI", "LTIException", "LTIKit", "LTIMalformedRequest",
    "LTINotInSessionException", "LTIPostMessageException", "LTIRoleException",
    "current_lti", "default_error", "error_page", "lti",
]
