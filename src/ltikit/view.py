"""The ``lti`` object a protected view receives, for every adapter: PyLTI's members, the
launch model, grades on both LTI versions and the LTI Advantage services.

:class:`BaseLTI` holds all of it on the framework-neutral :class:`ltikit.tool.Tool`; an
adapter's ``LTI`` (:class:`ltikit.flask.LTI`, :class:`ltikit.starlette.LTI`) adds only what
needs its framework: URLs of its routes, the response to a deep linking request, cookies,
and the Canvas API as the user."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from markupsafe import Markup

from . import _http
from .errors import (
    LTIConfigurationError,
    LTIException,
    LTIPostMessageException,
    Reason,
    ServiceError,
)
from .launch import CanvasInfo, Context, Launch, ResourceLink, User
from .launches import ActiveLaunch
from .lti11.outcomes import OutcomeResponse, OutcomeService
from .lti13.ags import AssignmentGradeService, Score
from .lti13.deep_linking import ContentItem, auto_post_page, response_jwt
from .lti13.html_pages import ScriptedPage
from .lti13.nrps import NamesRoleService
from .roles import Roles

if TYPE_CHECKING:
    from .canvas.services import CanvasServices
    from .tool import Tool

__all__ = ["BaseLTI"]

log = logging.getLogger("ltikit")


class BaseLTI:
    """The ``lti`` object a protected view receives (PyLTI's public members and more),
    without its framework's parts (see the module docstring)."""

    def __init__(self, tool: Tool, active: ActiveLaunch) -> None:
        self._tool = tool
        self._active = active

    # -- the launch model -----------------------------------------------------------------
    @property
    def launch(self) -> Launch:
        return self._active.launch

    @property
    def launch_id(self) -> str:
        """The signed, opaque id of this launch (safe to put in URLs and forms)."""
        return self._active.token

    @property
    def version(self) -> str:
        return self.launch.version

    @property
    def user(self) -> User:
        return self.launch.user

    @property
    def roles(self) -> Roles:
        return self.launch.roles

    @property
    def context(self) -> Context | None:
        return self.launch.context

    @property
    def resource_link(self) -> ResourceLink | None:
        return self.launch.resource_link

    @property
    def custom(self) -> Mapping[str, str]:
        return self.launch.custom

    @property
    def canvas(self) -> CanvasInfo | None:
        return self.launch.canvas

    @property
    def params(self) -> Mapping[str, str]:
        """Every signed launch parameter (what PyLTI kept in the session)."""
        return self._active.params

    # -- PyLTI's members ------------------------------------------------------------------
    # PyLTI's members read LTI 1.1 parameters directly: views that only need these (most
    # PyLTI views) never pay for building the whole launch model.
    @property
    def user_id(self) -> str | None:
        params = self._active.lti11_params
        if params is not None:
            return params.get("user_id") or None
        return self.launch.user.id

    @property
    def key(self) -> str | None:
        """The consumer key the launch was signed with."""
        return self._active.consumer_key

    @property
    def name(self) -> str:
        """PyLTI's display id: SIS id, else email, else user id."""
        params = self._active.lti11_params
        if params is not None:
            return (params.get("lis_person_sourcedid") or
                    params.get("lis_person_contact_email_primary") or
                    params.get("user_id") or "")
        user = self.launch.user
        return user.sourcedid or user.email or user.id or ""

    @property
    def role(self) -> str:
        """The raw ``roles`` parameter, as PyLTI returned it (1.3: the role URIs, joined)."""
        if self._active.lti11_params is not None:
            return self.params.get("roles", "")
        return ",".join(role.raw for role in self.launch.roles)

    def is_role(self, role: str) -> bool:
        """True if the user is in role group ``role`` (``staff``, ``student``, ...)."""
        return self._tool.role_groups.check(self.roles, role)

    @property
    def response_url(self) -> str | None:
        """The outcome service URL, rewritten by ``PYLTI_URL_FIX`` as PyLTI did."""
        url = self.launch.outcome.service_url if self.launch.outcome else \
            self.launch.params.get("lis_outcome_service_url")
        if url is None:
            return None
        for prefix, mapping in (self._tool.config.get("PYLTI_URL_FIX") or {}).items():
            if url.startswith(prefix):
                for old, new in mapping.items():
                    url = url.replace(old, new)
        return url

    # -- LTI Advantage services (1.3) -----------------------------------------------------
    @property
    def ags(self) -> AssignmentGradeService:
        """The Assignment and Grade Services of this launch
        (:class:`ltikit.lti13.ags.AssignmentGradeService`); a 502 page if not offered."""
        return self._ags

    @property
    def nrps(self) -> NamesRoleService:
        """The Names and Role Provisioning Services of this launch
        (:class:`ltikit.lti13.nrps.NamesRoleService`); a 502 page if not offered.  One
        object per request, so what a read learnt (``differences_url``, ``context``) stays."""
        return self._nrps

    # One object per request (an adapter's ``ags`` may wrap it: the grade methods below
    # use it directly).
    @functools.cached_property
    def _ags(self) -> AssignmentGradeService:
        endpoint = _offered(self.launch.ags_endpoint, "grade", Reason.NO_AGS)
        return AssignmentGradeService(self._tool.lti13.service_client(self.launch), endpoint)

    @functools.cached_property
    def _nrps(self) -> NamesRoleService:
        endpoint = _offered(self.launch.nrps_endpoint, "roster", Reason.NO_NRPS)
        return NamesRoleService(self._tool.lti13.service_client(self.launch), endpoint)

    def _deep_link_page(self, items: Iterable[ContentItem], *, message: str | None = None,
                        log: str | None = None, error_message: str | None = None,
                        error_log: str | None = None) -> ScriptedPage:
        """Answer this deep linking request with ``items``
        (:mod:`ltikit.lti13.deep_linking` content items): a page that posts the signed
        ``LtiDeepLinkingResponse`` back to the platform.  An empty list means "nothing
        chosen"."""
        settings = self.launch.deep_linking
        if settings is None:
            raise LTIException("This launch is not a deep linking request.",
                               reason="not_deep_linking")
        support = self._tool.lti13
        registration = support.registration_of(self.launch)
        token = response_jwt(settings, registration, self.launch.deployment_id or "", items,
                             support.tool_keys(), message=message, log=log,
                             error_message=error_message, error_log=error_log)
        return auto_post_page(settings.return_url, {"JWT": token})

    def post_grade(self, score: float, *, result_text: str | None = None,
                   result_url: str | None = None) -> bool:
        """Send ``score`` (0.0 to 1.0): LTI 1.1 replaceResult, or on an LTI 1.3 launch an
        AGS score on the launch's line item (``comment`` from ``result_text``).

        As in PyLTI: ``False`` if the score is out of range, ``True`` once the platform
        confirms, :class:`LTIPostMessageException` if it does not.
        """
        value = grade_value(score)
        if value is None:
            return False
        if self.version == "1.3":
            _http.run(self._ags_score_steps(value, comment=result_text))
            return True
        service, url, sourcedid = self._outcome_service()
        service.replace_result(url, sourcedid, value, result_text=result_text,
                               result_url=result_url)
        log.info("grade sent: key=%s user=%s", self.key, self.user_id)
        return True

    def _ags_score_steps(self, value: float, *, comment: str | None) -> _http.Steps[None]:
        """``post_grade`` on an LTI 1.3 launch, as steps (:mod:`ltikit._http`)."""
        ags = self._ags
        if not ags.endpoint.lineitem:
            raise LTIPostMessageException(
                "This launch cannot take a grade: it is not tied to a gradebook column "
                "(no line item in the launch).", reason="no_lineitem")
        try:
            yield from ags.post_score_steps(Score(user_id=str(self.user_id),
                                                  score_given=value, score_maximum=1.0,
                                                  comment=comment))
        except ServiceError as exc:
            raise LTIPostMessageException(exc.message, reason=exc.reason) from None
        log.info("grade sent (AGS): client=%s user=%s", self.key, self.user_id)

    def post_grade2(self, grade: float, user: str | None = None, comment: str = "") -> bool:
        """PyLTI's ``post_grade2``: the LTI 2.0 Result REST service of Open edX (a PUT of
        ``application/vnd.ims.lis.v2.result+json`` to the outcome URL with
        ``/grade_handler`` replaced by ``/lti_2_0_result_rest_handler/user/<user>``).
        ``user`` defaults to the launch's user id.  As in PyLTI: ``False`` if the grade is
        out of range, ``True`` once the platform answers 200,
        :class:`LTIPostMessageException` otherwise."""
        try:
            value = float(grade)
        except (TypeError, ValueError):
            return False
        if not 0.0 <= value <= 1.0:
            return False
        url = self.response_url
        if not url:
            raise LTIPostMessageException("This launch cannot take a grade: the platform sent "
                                          "no outcome service URL.",
                                          reason="no_outcome_service")
        service = self._signed_service()
        user_id = user if user is not None else self.user_id
        service.put_result2(url.replace("/grade_handler",
                                        f"/lti_2_0_result_rest_handler/user/{user_id}"),
                            value, comment=comment)
        log.info("grade sent (LTI 2.0 result): key=%s user=%s", self.key, user_id)
        return True

    def read_grade(self) -> float | None:
        """The user's current score (0.0 to 1.0), or None when there is none: LTI 1.1
        readResult, or on an LTI 1.3 launch the user's AGS result on the launch's line
        item."""
        if self.version == "1.3":
            return self._read_ags_result()
        service, url, sourcedid = self._outcome_service()
        return service.read_result(url, sourcedid).score

    def _read_ags_result(self) -> float | None:
        ags = self._ags
        if not ags.endpoint.lineitem:
            raise LTIPostMessageException(
                "This launch has no grade to read: it is not tied to a gradebook column "
                "(no line item in the launch).", reason="no_lineitem")
        try:
            results = list(ags.results(user_id=str(self.user_id)))
        except ServiceError as exc:
            raise LTIPostMessageException(exc.message, reason=exc.reason) from None
        mine = next((r for r in results if r.user_id == str(self.user_id)), None)
        if mine is None or mine.result_score is None:
            return None
        maximum = mine.result_maximum or 1.0
        return float(mine.result_score) / float(maximum) if maximum else None

    def delete_grade(self) -> OutcomeResponse:
        """LTI 1.1 deleteResult.  LTI 1.3's Assignment and Grade Services have no delete:
        post a score without ``score_given`` (``gradingProgress`` ``NotReady``) instead."""
        if self.version == "1.3":
            raise LTIPostMessageException(
                "LTI 1.3 (Assignment and Grade Services) has no way to delete a grade; post "
                "a score without score_given and with grading_progress='NotReady' to clear "
                "it.", reason="no_ags_delete")
        service, url, sourcedid = self._outcome_service()
        return service.delete_result(url, sourcedid)

    def _outcome_service(self) -> tuple[OutcomeService, str, str]:
        outcome = self.launch.outcome
        url = self.response_url
        if outcome is None or not url:
            raise LTIPostMessageException(
                "This launch cannot take a grade: the platform sent no outcome service URL "
                "or result sourcedid (not a graded placement, or the user is not a learner).",
                reason="no_outcome_service")
        return self._signed_service(), url, outcome.result_sourcedid

    def _signed_service(self) -> OutcomeService:
        secret = self._tool.consumers.secret_for(self.key or "")
        if secret is None:
            raise LTIPostMessageException("The consumer of this launch is no longer known.",
                                          reason="unknown_consumer_key")
        return OutcomeService(self.key or "", secret,
                              timeout=self._tool.settings.outcomes_timeout)

    def close_session(self) -> None:
        """End this launch: later requests carrying its id are refused."""
        self._tool.launches.end(self._active)
        self._forget_cookie(self._tool.settings.cookie_name)

    def _forget_cookie(self, name: str) -> None:
        """The adapter deletes the launch cookie ``name`` if this request carried this
        launch's id in it."""

    # -- Canvas API as this user (each adapter's) ---------------------------------------
    @property
    def has_canvas_api(self) -> bool:
        """Can this launch use the Canvas API as its user: it came from a Canvas instance
        this tool has a developer key for (``LTIKIT_CANVAS_INSTANCES``), with the Canvas
        user id?  False for launches from other platforms (Moodle, Blackboard, ...), from
        a Canvas this tool is not set up for, and where Canvas API access is not
        configured at all, so one page can serve every platform and add the Canvas part
        where it can."""
        canvas = self._tool.canvas
        return canvas is not None and canvas.flow.serves(self.launch)

    def _canvas_services(self) -> CanvasServices:
        canvas = self._tool.canvas
        if canvas is None:
            raise LTIConfigurationError(
                "Canvas API access is not configured: set LTIKIT_CANVAS_INSTANCES and "
                "LTIKIT_ENCRYPTION_KEYS.", reason="canvas_not_configured")
        return canvas

    # -- carrying the launch to the next request ------------------------------------------
    def url_for(self, endpoint: str, **values: Any) -> str:
        """The URL of the route ``endpoint`` plus this launch's id, so the link works in
        this tab even when cookies are blocked or another launch happened in another
        tab (the adapter's ``url_for``)."""
        raise NotImplementedError

    def hidden_field(self) -> Markup:
        """An ``<input type=hidden>`` carrying this launch's id, for forms."""
        name = self._tool.settings.launch_param
        return Markup('<input type="hidden" name="{}" value="{}">').format(name, self.launch_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.version} user={self.user_id!r} key={self.key!r}>"


_Endpoint = TypeVar("_Endpoint")


def grade_value(score: Any) -> float | None:
    """``score`` as a grade from 0.0 to 1.0, or ``None`` (PyLTI's ``post_grade`` then
    answers ``False``)."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def _offered(endpoint: _Endpoint | None, what: str, reason: Reason) -> _Endpoint:
    if endpoint is None:
        raise LTIPostMessageException(f"The platform offered no {what} service with this "
                                      "launch.", reason=reason)
    return endpoint
