"""The launch model: what a tool knows about the user, the course and the link.

One :class:`Launch` describes a verified launch whatever the LTI version; the LTI 1.1
parameters and (later) the LTI 1.3 claims are both mapped onto it.  It is immutable and
cheap to rebuild from its stored form, which is how later requests of the same launch
get it back (see :mod:`ltikit.storage`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .roles import Roles

BASIC_LAUNCH = "basic-lti-launch-request"
LTI13_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
"""LTI 1.1 ``lti_message_type`` of a resource link launch."""


@dataclass(frozen=True, slots=True)
class User:
    id: str | None
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    sourcedid: str | None = None
    image: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """The course (or group, or account) the tool was launched from."""

    id: str
    label: str | None = None
    title: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceLink:
    """The placement of the tool in the platform; grades attach to it."""

    id: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where and for whom a grade may be sent (LTI 1.1 Basic Outcomes)."""

    service_url: str
    result_sourcedid: str


@dataclass(frozen=True, slots=True)
class Platform:
    """The LMS instance that launched (LTI 1.1 ``tool_consumer_*`` parameters)."""

    guid: str | None = None
    name: str | None = None
    product_family_code: str | None = None
    version: str | None = None
    contact_email: str | None = None


@dataclass(frozen=True, slots=True)
class CanvasInfo:
    """Canvas's own variables (``custom_canvas_*``), present when Canvas launched.

    Canvas ids are 64-bit integers across shards; they are kept as the strings Canvas sent.
    """

    user_id: str | None = None
    user_login_id: str | None = None
    course_id: str | None = None
    account_id: str | None = None
    api_domain: str | None = None
    enrollment_state: str | None = None
    assignment_id: str | None = None
    assignment_title: str | None = None
    assignment_points_possible: str | None = None

    @classmethod
    def from_custom(cls, custom: Mapping[str, str]) -> CanvasInfo | None:
        """From custom parameters without their prefix (``canvas_user_id``...): what
        Canvas sends in LTI 1.1, and what a 1.3 tool declares as custom fields; ``None``
        when none has a value.

        A value still written as a variable (``$Canvas.user.id``) is absent: Moodle, and
        any platform other than Canvas, sends the custom fields a tool declared for Canvas
        unexpanded, and Canvas itself leaves a variable that does not apply as written."""
        values = {}
        for name in ("user_id", "user_login_id", "course_id", "account_id", "api_domain",
                     "enrollment_state", "assignment_id", "assignment_title",
                     "assignment_points_possible"):
            value = custom.get(f"canvas_{name}")
            values[name] = None if value is None or value.startswith("$") else value
        if all(v is None for v in values.values()):
            return None
        return cls(**values)


AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEEP_LINKING_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


@dataclass(frozen=True, slots=True)
class AGSEndpoint:
    """Assignment and Grade Services offered with this launch (LTI AGS 2.0, the
    ``lti-ags/claim/endpoint`` claim): the scopes granted and the line item URLs."""

    scopes: tuple[str, ...]
    lineitems: str | None = None
    lineitem: str | None = None

    @classmethod
    def from_claim(cls, claim: Any) -> AGSEndpoint | None:
        if not isinstance(claim, Mapping):
            return None
        scopes = claim.get("scope")
        return cls(scopes=tuple(s for s in scopes if isinstance(s, str))
                   if isinstance(scopes, list) else (),
                   lineitems=_text(claim.get("lineitems")), lineitem=_text(claim.get("lineitem")))


@dataclass(frozen=True, slots=True)
class NRPSEndpoint:
    """Names and Role Provisioning Services offered with this launch (LTI NRPS 2.0)."""

    context_memberships_url: str
    service_versions: tuple[str, ...] = ()

    @classmethod
    def from_claim(cls, claim: Any) -> NRPSEndpoint | None:
        if not isinstance(claim, Mapping) or not _text(claim.get("context_memberships_url")):
            return None
        versions = claim.get("service_versions")
        return cls(context_memberships_url=claim["context_memberships_url"],
                   service_versions=tuple(str(v) for v in versions)
                   if isinstance(versions, list) else ())


@dataclass(frozen=True, slots=True)
class DeepLinkingSettings:
    """What the platform accepts back from a deep linking request (LTI DL 2.0)."""

    return_url: str
    accept_types: tuple[str, ...] = ()
    accept_presentation_document_targets: tuple[str, ...] = ()
    accept_media_types: str | None = None
    accept_multiple: bool | None = None
    accept_lineitem: bool | None = None
    auto_create: bool | None = None
    title: str | None = None
    text: str | None = None
    data: Any = None
    """Opaque to the tool, echoed back as sent (a string in the specification's examples;
    some platforms send an object)."""

    @classmethod
    def from_claim(cls, claim: Any) -> DeepLinkingSettings | None:
        if not isinstance(claim, Mapping) or not _text(claim.get("deep_link_return_url")):
            return None

        def strings(name: str) -> tuple[str, ...]:
            value = claim.get(name)
            return tuple(v for v in value if isinstance(v, str)) \
                if isinstance(value, list) else ()

        def flag(name: str) -> bool | None:
            value = claim.get(name)
            return value if isinstance(value, bool) else None

        return cls(return_url=claim["deep_link_return_url"],
                   accept_types=strings("accept_types"),
                   accept_presentation_document_targets=strings(
                       "accept_presentation_document_targets"),
                   accept_media_types=_text(claim.get("accept_media_types")),
                   accept_multiple=flag("accept_multiple"),
                   accept_lineitem=flag("accept_lineitem"), auto_create=flag("auto_create"),
                   title=_text(claim.get("title")), text=_text(claim.get("text")),
                   data=claim.get("data"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class Launch:
    """A verified launch.  ``params`` keeps every signed parameter (``oauth_*`` removed)."""

    version: str
    message_type: str
    user: User
    roles: Roles
    context: Context | None
    resource_link: ResourceLink | None
    consumer_key: str | None = None
    """LTI 1.1: the OAuth consumer key the launch was signed with.  (On an LTI 1.3 launch it
    holds the client id, as it always has; read :attr:`client_id` there.)"""
    custom: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ext: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    canvas: CanvasInfo | None = None
    outcome: Outcome | None = None
    platform: Platform = field(default_factory=Platform)
    return_url: str | None = None
    locale: str | None = None
    document_target: str | None = None
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    deployment_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """LTI 1.3: every claim of the id_token, as the platform sent them."""
    ags_endpoint: AGSEndpoint | None = None
    """LTI 1.3: the grade service's claim (line items URL, scopes) sent with this launch;
    ``lti.ags`` is the client that calls it."""
    nrps_endpoint: NRPSEndpoint | None = None
    """LTI 1.3: the roster service's claim sent with this launch; ``lti.nrps`` calls it."""
    deep_linking: DeepLinkingSettings | None = None
    """LTI 1.3: set on a deep linking request (``LtiDeepLinkingRequest``)."""
    client_id: str | None = None
    """LTI 1.3: the tool's client id at the platform (``aud``/``azp`` of the id_token)."""

    @property
    def ags(self) -> AGSEndpoint | None:
        """Deprecated: :attr:`ags_endpoint` (``lti.ags`` is the service's client)."""
        warnings.warn("Launch.ags is now Launch.ags_endpoint", DeprecationWarning,
                      stacklevel=2)
        return self.ags_endpoint

    @property
    def nrps(self) -> NRPSEndpoint | None:
        """Deprecated: :attr:`nrps_endpoint` (``lti.nrps`` is the service's client)."""
        warnings.warn("Launch.nrps is now Launch.nrps_endpoint", DeprecationWarning,
                      stacklevel=2)
        return self.nrps_endpoint

    @classmethod
    def from_lti11(cls, params: Mapping[str, str], consumer_key: str | None) -> Launch:
        """Build the model from verified LTI 1.1 parameters (single values)."""
        get = params.get
        custom: dict[str, str] = {}
        ext: dict[str, str] = {}
        from_canvas = False
        for name, value in params.items():
            if name[:7] == "custom_":
                custom[name[7:]] = value
                from_canvas = from_canvas or name[7:14] == "canvas_"
            elif name[:4] == "ext_":
                ext[name[4:]] = value
        canvas = CanvasInfo.from_custom(custom) if from_canvas else None
        outcome_url = get("lis_outcome_service_url")
        sourcedid = get("lis_result_sourcedid")
        context_id = get("context_id")
        link_id = get("resource_link_id")
        return cls(
            version="1.1",
            message_type=get("lti_message_type", ""),
            consumer_key=consumer_key,
            user=User(
                id=get("user_id") or None,
                name=get("lis_person_name_full"),
                given_name=get("lis_person_name_given"),
                family_name=get("lis_person_name_family"),
                email=get("lis_person_contact_email_primary"),
                sourcedid=get("lis_person_sourcedid"),
                image=get("user_image"),
            ),
            roles=Roles.parse(get("roles")),
            context=Context(
                id=context_id,
                label=get("context_label"),
                title=get("context_title"),
                type=get("context_type"),
            ) if context_id else None,
            resource_link=ResourceLink(
                id=link_id,
                title=get("resource_link_title"),
                description=get("resource_link_description"),
            ) if link_id else None,
            custom=MappingProxyType(custom),
            ext=MappingProxyType(ext),
            canvas=canvas,
            outcome=Outcome(outcome_url, sourcedid) if outcome_url and sourcedid else None,
            platform=Platform(
                guid=get("tool_consumer_instance_guid"),
                name=get("tool_consumer_instance_name"),
                product_family_code=get("tool_consumer_info_product_family_code"),
                version=get("tool_consumer_info_version"),
                contact_email=get("tool_consumer_instance_contact_email"),
            ),
            return_url=get("launch_presentation_return_url"),
            locale=get("launch_presentation_locale"),
            document_target=get("launch_presentation_document_target"),
            params=_frozen(params),
        )

    @classmethod
    def from_lti13(cls, claims: Mapping[str, Any], client_id: str | None = None) -> Launch:
        """Build the model from a verified LTI 1.3 id_token's claims.

        Canvas sends its ids only as custom fields the tool declares (``canvas_user_id``:
        ``$Canvas.user.id``, ``canvas_course_id``, ``canvas_api_domain``...): they fill
        :class:`CanvasInfo` as the 1.1 ``custom_canvas_*`` parameters do.
        """
        def claim(name: str) -> Any:
            value = claims.get(LTI13_CLAIM + name)
            return value if isinstance(value, dict) else {}

        context, link, lis = claim("context"), claim("resource_link"), claim("lis")
        presentation, platform = claim("launch_presentation"), claim("tool_platform")
        custom = {str(k): str(v) for k, v in claim("custom").items()}
        canvas = CanvasInfo.from_custom(custom)  # None without a Canvas value
        types = context.get("type")
        return cls(
            version="1.3",
            message_type=str(claims.get(LTI13_CLAIM + "message_type", "")),
            consumer_key=client_id,
            client_id=client_id,
            user=User(id=claims.get("sub"), name=claims.get("name"),
                      given_name=claims.get("given_name"),
                      family_name=claims.get("family_name"), email=claims.get("email"),
                      sourcedid=lis.get("person_sourcedid"), image=claims.get("picture")),
            roles=Roles.parse(claims.get(LTI13_CLAIM + "roles") or []),
            context=Context(id=str(context["id"]), label=context.get("label"),
                            title=context.get("title"),
                            type=",".join(types) if isinstance(types, list) else types)
            if context.get("id") else None,
            resource_link=ResourceLink(id=str(link["id"]), title=link.get("title"),
                                       description=link.get("description"))
            if link.get("id") else None,
            custom=MappingProxyType(custom),
            canvas=canvas,
            platform=Platform(guid=platform.get("guid"), name=platform.get("name"),
                              product_family_code=platform.get("product_family_code"),
                              version=platform.get("version"),
                              contact_email=platform.get("contact_email")),
            return_url=presentation.get("return_url"),
            locale=presentation.get("locale") or claims.get("locale"),
            document_target=presentation.get("document_target"),
            deployment_id=claims.get(LTI13_CLAIM + "deployment_id"),
            claims=MappingProxyType(dict(claims)),
            ags_endpoint=AGSEndpoint.from_claim(claims.get(AGS_CLAIM)),
            nrps_endpoint=NRPSEndpoint.from_claim(claims.get(NRPS_CLAIM)),
            deep_linking=DeepLinkingSettings.from_claim(claims.get(DEEP_LINKING_CLAIM)),
        )

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Launch:
        if data.get("version") == "1.3":
            return cls.from_lti13(data["claims"], data.get("client_id"))
        if data.get("version") != "1.1":
            raise ValueError(f"unsupported stored launch version {data.get('version')!r}")
        return cls.from_lti11(data["params"], data.get("consumer_key"))
