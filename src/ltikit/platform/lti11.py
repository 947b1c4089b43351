"""The platform side of LTI 1.1: Canvas-shaped launches, tool XML, Basic Outcomes.

Launch parameters follow what Canvas sends (``gems/lti_outbound`` in Canvas's source):
roles in Canvas's mixed spellings (``Instructor``, ``Learner``, ``ContentDeveloper``,
``urn:lti:role:ims/lis/TeachingAssistant``, observers as
``urn:lti:instrole:ims/lis/Observer,urn:lti:role:ims/lis/Mentor``), every role as a URN in
``ext_roles``, the privacy level deciding which personal fields are sent, and outcome
parameters on assignment launches, the sourcedid for learners only.  Launches are signed
with oauthlib's ``Client``; outcome requests are verified with oauthlib's signature
functions and the body hash recomputed, so the platform never shares code with the
tool-side verifier it is used to test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_BODY, Client
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

PLACEMENTS = ("course_navigation", "account_navigation", "user_navigation", "editor_button",
              "homework_submission", "resource_selection", "link_selection",
              "assignment_selection")
"""Placements the platform shows; the first five are the ones the old template declared."""

PRIVACY_LEVELS = ("anonymous", "name_only", "email_only", "public")

_CONTEXT_ROLES = {  # Canvas's `roles` spellings (LtiOutbound::LTIRoles::ContextNotNamespaced)
    "TeacherEnrollment": "Instructor",
    "TaEnrollment": "urn:lti:role:ims/lis/TeachingAssistant",
    "DesignerEnrollment": "ContentDeveloper",
    "StudentEnrollment": "Learner",
    "ObserverEnrollment": "urn:lti:instrole:ims/lis/Observer,urn:lti:role:ims/lis/Mentor",
}
_EXT_ROLES = {
    "TeacherEnrollment": "urn:lti:role:ims/lis/Instructor",
    "TaEnrollment": "urn:lti:role:ims/lis/TeachingAssistant",
    "DesignerEnrollment": "urn:lti:role:ims/lis/ContentDeveloper",
    "StudentEnrollment": "urn:lti:role:ims/lis/Learner",
    "ObserverEnrollment": "urn:lti:role:ims/lis/Learner/NonCreditLearner,"
                          "urn:lti:role:ims/lis/Mentor",
}
ADMIN_ROLE = "urn:lti:instrole:ims/lis/Administrator"
NO_ROLE = "urn:lti:sysrole:ims/lis/None"


def roles_for(enrollment_types: list[str], account_admin: bool) -> tuple[str, str]:
    """``roles`` and ``ext_roles`` as Canvas sends them for a user in a context."""
    roles = [_CONTEXT_ROLES[t] for t in enrollment_types if t in _CONTEXT_ROLES]
    if account_admin:
        roles.append(ADMIN_ROLE)
    ext = []
    if "TeacherEnrollment" in enrollment_types or "TaEnrollment" in enrollment_types:
        ext.append("urn:lti:instrole:ims/lis/Instructor")
    elif "StudentEnrollment" in enrollment_types:
        ext.append("urn:lti:instrole:ims/lis/Student")
    if account_admin:
        ext.append(ADMIN_ROLE)
    ext += [_EXT_ROLES[t] for t in enrollment_types if t in _EXT_ROLES]
    ext.append("urn:lti:sysrole:ims/lis/User")
    return (",".join(roles) or NO_ROLE), ",".join(ext)


@dataclass
class LaunchContext:
    """Everything a launch is built from (collected by the web layer)."""

    platform_url: str  # e.g. http://localhost:8000
    guid: str
    account: Mapping[str, Any]
    tool: Mapping[str, Any]
    user: Mapping[str, Any]
    placement: str
    course: Mapping[str, Any] | None = None
    enrollment_types: list[str] = field(default_factory=list)
    assignment: Mapping[str, Any] | None = None
    sourcedid: str | None = None
    return_url: str = ""
    item: Mapping[str, Any] | None = None  # a deep-linked module item being launched
    sections: Sequence[Mapping[str, Any]] = field(default_factory=list)  # the user's, in course
    canvas: bool = True  # False: launch as a platform without Canvas's extensions


def placement_settings(tool: Mapping[str, Any], placement: str) -> dict[str, Any] | None:
    """The placement's options, or ``None`` when the tool does not declare it enabled."""
    options: dict[str, Any] | None = tool["placements"].get(placement)
    if options is None or str(options.get("enabled", "true")).lower() == "false":
        return None
    return options


def launch_url(tool: Mapping[str, Any], placement: str) -> str | None:
    options = tool["placements"].get(placement) or {}
    return options.get("url") or tool.get("url")


def launch_params(ctx: LaunchContext) -> dict[str, str]:
    """The unsigned parameters of a launch, as Canvas builds them."""
    tool, user, course, account = ctx.tool, ctx.user, ctx.course, ctx.account
    privacy = tool.get("privacy_level") or "anonymous"
    context_row = course or account
    is_learner = "StudentEnrollment" in ctx.enrollment_types
    roles, ext_roles = roles_for(ctx.enrollment_types, bool(user.get("account_admin")))
    link_code = ctx.assignment["lti_id"] if ctx.assignment else context_row["lti_id"]
    params: dict[str, str] = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": link_code,
        "resource_link_title": ctx.assignment["name"] if ctx.assignment else tool["name"],
        "user_id": user["lti_context_id"],
        "roles": roles,
        "ext_roles": ext_roles,
        "context_id": context_row["lti_id"],
        "context_title": context_row["name"],
        "launch_presentation_locale": user.get("locale") or "en",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": ctx.return_url,
        "tool_consumer_instance_guid": f"{ctx.guid}.ltikit-platform",
        "tool_consumer_instance_name": account["name"],
        "tool_consumer_instance_contact_email": "notifications@example.edu",
        "tool_consumer_info_product_family_code": "canvas",
        "tool_consumer_info_version": "cloud",
        "oauth_callback": "about:blank",
    }
    if course is not None:
        params["context_label"] = course["course_code"]
        params["custom_canvas_enrollment_state"] = "active" if ctx.enrollment_types \
            else "inactive"
    if privacy in ("name_only", "public"):
        params.update(lis_person_name_given=user["given_name"],
                      lis_person_name_family=user["family_name"],
                      lis_person_name_full=user["name"])
    if privacy in ("email_only", "public"):
        params["lis_person_contact_email_primary"] = user["email"]
    if privacy == "public":
        params["user_image"] = f"{ctx.platform_url}/images/thumbnails/{user['id']}.png"
        params["custom_canvas_user_id"] = str(user["id"])
        params["custom_canvas_user_login_id"] = user["login_id"]
        if user.get("sis_user_id"):
            params["lis_person_sourcedid"] = user["sis_user_id"]
        if course is not None:
            params["custom_canvas_course_id"] = str(course["id"])
            if course.get("sis_course_id"):
                params["lis_course_offering_sourcedid"] = course["sis_course_id"]
        else:
            params["custom_canvas_account_id"] = str(account["id"])
        params["custom_canvas_api_domain"] = ctx.platform_url.split("://", 1)[1]
    if ctx.assignment is not None:
        outcome_url = f"{ctx.platform_url}/api/lti/v1/tools/{tool['id']}/grade_passback"
        params.update({
            "lis_outcome_service_url": outcome_url,
            "ext_ims_lis_basic_outcome_url":
                f"{ctx.platform_url}/api/lti/v1/tools/{tool['id']}/ext_grade_passback",
            "ext_outcome_data_values_accepted": "url,text",
            "ext_outcome_result_total_score_accepted": "true",
            "custom_canvas_assignment_title": ctx.assignment["name"],
            "custom_canvas_assignment_points_possible":
                _points(ctx.assignment["points_possible"]),
        })
        if privacy == "public":
            params["custom_canvas_assignment_id"] = str(ctx.assignment["id"])
        if is_learner and ctx.sourcedid:
            params["lis_result_sourcedid"] = ctx.sourcedid
    options = tool["placements"].get(ctx.placement) or {}
    if ctx.placement == "editor_button":
        params.update(selection_directive="embed_content", ext_content_intended_use="embed",
                      ext_content_return_types="oembed,lti_launch_url,url,image_url,iframe",
                      ext_content_return_url=ctx.return_url)
    elif ctx.placement == "homework_submission":
        params.update(ext_content_intended_use="homework", ext_content_return_url=ctx.return_url)
    elif ctx.placement in ("resource_selection", "link_selection", "assignment_selection"):
        params.update(selection_directive="select_link", ext_content_intended_use="navigation",
                      ext_content_return_types="lti_launch_url",
                      ext_content_return_url=ctx.return_url)
    if "selection_width" in options:
        params["launch_presentation_width"] = str(options["selection_width"])
    if "selection_height" in options:
        params["launch_presentation_height"] = str(options["selection_height"])
    if not ctx.canvas:
        # Before the tool's own custom fields, which may well be named canvas_*.
        params = {k: v for k, v in params.items() if not k.startswith(_CANVAS_ONLY)}
        params["tool_consumer_info_product_family_code"] = PLAIN_FAMILY
        params["tool_consumer_info_version"] = "1.0"
    custom = dict(tool.get("custom_fields") or {})
    custom.update(options.get("custom_fields") or {})
    for name, value in custom.items():
        params["custom_" + _custom_name(name)] = _substitute(str(value), ctx)
    return params


# What a launch without Canvas's extensions leaves out, and the product it says it is.
_CANVAS_ONLY = ("custom_canvas_", "ext_", "selection_directive")
PLAIN_FAMILY = "ltikit-platform"


def _points(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _custom_name(name: str) -> str:
    # LTI 1.1: custom parameter names are lower-cased, other characters become "_".
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def _substitute(value: str, ctx: LaunchContext) -> str:
    """A custom parameter's value with Canvas's variable expansion (the ones tools use most,
    from ``lib/lti/variable_expander.rb``).  As in Canvas, a variable that does not apply
    here (``$Canvas.course.id`` outside a course) or that the platform does not know stays
    as written, ``$`` and all."""
    if not value.startswith("$"):
        return value
    return variables(ctx).get(value[1:], value)


def variables(ctx: LaunchContext) -> dict[str, str]:
    """The variables Canvas would expand in this launch, by name (without the ``$``)."""
    user, course, account = ctx.user, ctx.course, ctx.account
    domain = ctx.platform_url.split("://", 1)[1]
    _, ext_roles = roles_for(ctx.enrollment_types, bool(user.get("account_admin")))
    canvas_roles = list(dict.fromkeys(ctx.enrollment_types))
    if user.get("account_admin"):
        canvas_roles.append("Account Admin")
    known = {
        "Canvas.api.domain": domain, "Canvas.api.baseUrl": ctx.platform_url,
        "Canvas.account.id": str(account["id"]), "Canvas.account.name": account["name"],
        "Canvas.account.sisSourceId": "", "Canvas.rootAccount.id": str(account["id"]),
        "Canvas.root_account.id": str(account["id"]), "Canvas.rootAccount.sisSourceId": "",
        "Canvas.externalTool.url":
            f"{ctx.platform_url}/api/v1/accounts/{account['id']}/external_tools/"
            f"{ctx.tool['id']}",
        "Canvas.user.id": str(user["id"]), "Canvas.user.globalId": str(user["id"]),
        "User.id": str(user["id"]), "Canvas.user.loginId": user["login_id"],
        "User.username": user["login_id"], "Canvas.user.sisSourceId":
            user.get("sis_user_id") or "", "Person.sourcedId": user.get("sis_user_id") or "",
        "Canvas.user.sisIntegrationId": "", "Canvas.user.prefersHighContrast": "false",
        "Canvas.user.isRootAccountAdmin": "true" if user.get("account_admin") else "false",
        "Person.name.full": user["name"], "Person.name.display": user["short_name"],
        "Person.name.given": user["given_name"], "Person.name.family": user["family_name"],
        "Person.email.primary": user["email"],
        "Person.address.timezone": user.get("time_zone") or "America/Denver",
        "Message.locale": user.get("locale") or "en",
        "User.image": f"{ctx.platform_url}/images/thumbnails/{user['id']}.png",
        "Canvas.xuser.allRoles": ext_roles,
        "Canvas.membership.roles": ",".join(canvas_roles),
        "Membership.role": ",".join(_lis2_roles(ctx)),
    }
    if course is not None:
        sections = ctx.sections
        known.update({
            "Canvas.course.id": str(course["id"]), "Canvas.course.name": course["name"],
            "Canvas.course.sisSourceId": course.get("sis_course_id") or "",
            "Canvas.course.workflowState": course.get("workflow_state") or "available",
            "Canvas.course.startAt": course.get("start_at") or "",
            "CourseSection.sourcedId": course.get("sis_course_id") or "",
            "Context.id": course["lti_id"], "Context.title": course["name"],
            "Context.label": course["course_code"],
            "com.instructure.contextLabel": course["course_code"],
            "Context.sourcedId": course.get("sis_course_id") or "",
            "Canvas.enrollment.enrollmentState":
                "active" if ctx.enrollment_types else "inactive",
            "Canvas.membership.concludedRoles": "",
            "Canvas.course.sectionIds": ",".join(str(s["id"]) for s in sections),
            "Canvas.course.sectionSisSourceIds":
                ",".join(s["sis_section_id"] for s in sections if s.get("sis_section_id")),
            "com.instructure.User.sectionNames": json.dumps([s["name"] for s in sections]),
        })
    if ctx.assignment is not None:
        points = _points(ctx.assignment["points_possible"])
        known.update({"Canvas.assignment.id": str(ctx.assignment["id"]),
                      "Canvas.assignment.title": ctx.assignment["name"],
                      "Canvas.assignment.pointsPossible": points,
                      "ResourceLink.id": ctx.assignment["lti_id"],
                      "ResourceLink.title": ctx.assignment["name"]})
    if ctx.item is not None:
        known.update({"Canvas.moduleItem.id": str(ctx.item["id"]),
                      "ResourceLink.id": ctx.item["lti_id"],
                      "ResourceLink.title": ctx.item.get("title") or ctx.tool["name"]})
    if not ctx.canvas:  # only the standard variables (LTI 1.1 and 1.3 "Variables")
        return {k: v for k, v in known.items()
                if not k.startswith(("Canvas.", "com.instructure."))}
    return known


def _lis2_roles(ctx: LaunchContext) -> list[str]:
    from .lti13 import roles13

    return roles13(ctx.enrollment_types, bool(ctx.user.get("account_admin")))


def sign(url: str, params: Mapping[str, str], key: str, secret: str) -> list[tuple[str, str]]:
    """The form fields of a signed POST launch (oauthlib, HMAC-SHA1, body signature)."""
    client = Client(key, client_secret=secret, signature_method=SIGNATURE_HMAC_SHA1,
                    signature_type=SIGNATURE_TYPE_BODY)
    _, _, body = client.sign(url, http_method="POST", body=dict(params),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    return parse_qsl(body, keep_blank_values=True)


# -- tool configuration XML ---------------------------------------------------------------

NS = {
    "cc": "http://www.imsglobal.org/xsd/imslticc_v1p0",
    "blti": "http://www.imsglobal.org/xsd/imsbasiclti_v1p0",
    "lticm": "http://www.imsglobal.org/xsd/imslticm_v1p0",
    "lticp": "http://www.imsglobal.org/xsd/imslticp_v1p0",
}
CANVAS_PLATFORM = "canvas.instructure.com"
MAX_XML_BYTES = 1_000_000


class ConfigError(ValueError):
    """The tool's XML configuration cannot be used (the message says why)."""


@dataclass
class ToolConfig:
    name: str
    url: str | None
    description: str | None = None
    domain: str | None = None
    privacy_level: str = "anonymous"
    custom_fields: dict[str, str] = field(default_factory=dict)
    placements: dict[str, dict[str, Any]] = field(default_factory=dict)


def _properties(element: ET.Element) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for child in element:
        name = child.get("name")
        if not name:
            continue
        if child.tag == f"{{{NS['lticm']}}}property":
            values[name] = (child.text or "").strip()
        elif child.tag == f"{{{NS['lticm']}}}options":
            values[name] = _properties(child)
    return values


def parse_tool_xml(xml: bytes | str) -> ToolConfig:
    """Read a ``cartridge_basiclti_link`` the way Canvas's importer does."""
    data = xml.encode() if isinstance(xml, str) else xml
    if len(data) > MAX_XML_BYTES:
        raise ConfigError("The configuration is larger than 1 MB.")
    try:
        root = SafeET.fromstring(data)  # no DTDs, entities or external references
    except ET.ParseError as exc:
        # Canvas rejects, for example, a url with an unescaped "&".
        raise ConfigError(f"The configuration is not well-formed XML: {exc}") from None
    except DefusedXmlException:
        raise ConfigError("The configuration uses a DTD or entities, which are refused.") \
            from None
    if root.tag != f"{{{NS['cc']}}}cartridge_basiclti_link":
        raise ConfigError("The configuration is not a cartridge_basiclti_link "
                          f"(root element is {root.tag!r}).")
    title = (root.findtext("blti:title", namespaces=NS) or "").strip()
    if not title:
        raise ConfigError("The configuration has no blti:title.")
    url = (root.findtext("blti:secure_launch_url", namespaces=NS) or
           root.findtext("blti:launch_url", namespaces=NS) or "").strip() or None
    config = ToolConfig(name=title, url=url,
                        description=(root.findtext("blti:description", namespaces=NS)
                                     or "").strip() or None)
    custom = root.find("blti:custom", NS)
    if custom is not None:
        config.custom_fields = {k: v for k, v in _properties(custom).items()
                                if isinstance(v, str)}
    for extensions in root.findall("blti:extensions", NS):
        if extensions.get("platform") != CANVAS_PLATFORM:
            continue
        values = _properties(extensions)
        privacy = values.get("privacy_level", "anonymous")
        if privacy not in PRIVACY_LEVELS:
            raise ConfigError(f"Unknown privacy_level {privacy!r}.")
        config.privacy_level = privacy
        config.domain = values.get("domain") or None
        for name in PLACEMENTS:
            options = values.get(name)
            if isinstance(options, dict):
                config.placements[name] = options
    if not config.url and not config.domain:
        raise ConfigError("The configuration has neither a launch_url nor a domain.")
    for name, options in config.placements.items():
        if not (options.get("url") or config.url):
            raise ConfigError(f"The {name} placement has no url and the tool has no "
                              "launch_url.")
    return config


# -- Basic Outcomes -----------------------------------------------------------------------

OMS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"


class OutcomeRefused(Exception):
    """The outcome request is refused before its body is read (HTTP status given)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def verify_outcome_request(method: str, url: str, headers: Mapping[str, str], body: bytes,
                           tool: Mapping[str, Any], claim_nonce: Callable[[str, int], bool],
                           window: int = 300) -> None:
    """Check an outcome request's OAuth header signature and ``oauth_body_hash``."""
    auth = headers.get("Authorization") or ""
    if auth[:6].lower() != "oauth ":
        raise OutcomeRefused(401, "The request has no OAuth Authorization header.")
    try:
        oauth = dict(oauth_utils.parse_authorization_header(auth))
    except ValueError:
        raise OutcomeRefused(401, "The OAuth Authorization header is malformed.") from None
    oauth = {k: oauth_utils.unescape(v) for k, v in oauth.items()}
    if oauth.get("oauth_consumer_key") != tool["consumer_key"]:
        raise OutcomeRefused(401, "Unknown consumer key.")
    if oauth.get("oauth_signature_method") != SIGNATURE_HMAC_SHA1:
        raise OutcomeRefused(401, "Only HMAC-SHA1 is accepted.")
    try:
        timestamp = int(oauth.get("oauth_timestamp", ""))
    except ValueError:
        raise OutcomeRefused(401, "Bad oauth_timestamp.") from None
    if abs(time.time() - timestamp) > window:
        raise OutcomeRefused(401, "The oauth_timestamp is too old or in the future.")
    expected_hash = base64.b64encode(hashlib.sha1(body).digest()).decode()  # noqa: S324
    if not hmac.compare_digest(oauth.get("oauth_body_hash", ""), expected_hash):
        raise OutcomeRefused(401, "The oauth_body_hash does not match the body.")
    request = OAuthlibRequest(url, http_method=cast(Any, method), body=None,
                              headers={"Authorization": auth})
    # oauthlib's Request keeps OAuth fields as dynamic attributes; its own endpoints set
    # params and signature this way before calling verify_hmac_sha1.
    request.params = oauth_signature.collect_parameters(  # type: ignore[attr-defined]
        uri_query=url.partition("?")[2], headers={"Authorization": auth},
        exclude_oauth_signature=True)
    request.signature = oauth.get("oauth_signature", "")  # type: ignore[attr-defined]
    if not oauth_signature.verify_hmac_sha1(request, tool["shared_secret"]):
        raise OutcomeRefused(401, "Invalid OAuth signature.")
    if not claim_nonce(oauth.get("oauth_nonce", ""), window * 2):
        raise OutcomeRefused(401, "The oauth_nonce was already used.")


@dataclass
class OutcomeRequest:
    operation: str  # replaceResult, readResult, deleteResult, or what was sent
    message_id: str
    sourcedid: str | None
    score: str | None = None
    result_text: str | None = None
    result_url: str | None = None


def parse_outcome_request(body: bytes) -> OutcomeRequest:
    try:
        root = SafeET.fromstring(body)  # no DTDs, entities or external references
    except (ET.ParseError, DefusedXmlException):
        raise OutcomeRefused(400, "The body is not usable XML (no DTDs or entities).") \
            from None
    q = f"{{{OMS}}}"
    if root.tag != f"{q}imsx_POXEnvelopeRequest":
        raise OutcomeRefused(400, "The body is not an imsx_POXEnvelopeRequest.")
    message_id = root.findtext(f"{q}imsx_POXHeader/{q}imsx_POXRequestHeaderInfo/"
                               f"{q}imsx_messageIdentifier") or ""
    pox_body = root.find(f"{q}imsx_POXBody")
    operation_el = pox_body[0] if pox_body is not None and len(pox_body) else None
    if operation_el is None:
        raise OutcomeRefused(400, "The request names no operation.")
    operation = operation_el.tag.removeprefix(q).removesuffix("Request")
    record = operation_el.find(f"{q}resultRecord")
    sourcedid = record.findtext(f"{q}sourcedGUID/{q}sourcedId") if record is not None \
        else None
    result = record.find(f"{q}result") if record is not None else None
    return OutcomeRequest(
        operation=operation, message_id=message_id,
        sourcedid=sourcedid.strip() if sourcedid else None,
        score=result.findtext(f"{q}resultScore/{q}textString") if result is not None
        else None,
        result_text=result.findtext(f"{q}resultData/{q}text") if result is not None
        else None,
        result_url=result.findtext(f"{q}resultData/{q}url") if result is not None else None)


def outcome_response(request: OutcomeRequest | None, code_major: str, description: str, *,
                     score: float | None = None, include_body: bool = True) -> bytes:
    """An ``imsx_POXEnvelopeResponse`` (LTI 1.1 Implementation Guide, section 6)."""
    ET.register_namespace("", OMS)
    q = f"{{{OMS}}}"
    envelope = ET.Element(f"{q}imsx_POXEnvelopeResponse")
    info = ET.SubElement(ET.SubElement(envelope, f"{q}imsx_POXHeader"),
                         f"{q}imsx_POXResponseHeaderInfo")
    ET.SubElement(info, f"{q}imsx_version").text = "V1.0"
    ET.SubElement(info, f"{q}imsx_messageIdentifier").text = uuid.uuid4().hex
    status = ET.SubElement(info, f"{q}imsx_statusInfo")
    ET.SubElement(status, f"{q}imsx_codeMajor").text = code_major
    ET.SubElement(status, f"{q}imsx_severity").text = \
        "status" if code_major == "success" else "error"
    ET.SubElement(status, f"{q}imsx_description").text = description
    ET.SubElement(status, f"{q}imsx_messageRefIdentifier").text = \
        request.message_id if request else ""
    if request is not None:
        ET.SubElement(status, f"{q}imsx_operationRefIdentifier").text = request.operation
    body = ET.SubElement(envelope, f"{q}imsx_POXBody")
    if request is not None and include_body and code_major == "success":
        response = ET.SubElement(body, f"{q}{request.operation}Response")
        if request.operation == "readResult":
            result = ET.SubElement(response, f"{q}result")
            score_el = ET.SubElement(result, f"{q}resultScore")
            ET.SubElement(score_el, f"{q}language").text = "en"
            ET.SubElement(score_el, f"{q}textString").text = \
                "" if score is None else repr(float(score))
    return bytes(ET.tostring(envelope, encoding="utf-8", xml_declaration=True))
