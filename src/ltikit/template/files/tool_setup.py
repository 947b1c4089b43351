"""What this tool registers and shows, the same on Flask (``app.py``) and FastAPI: the
LTI Advantage scopes, the Canvas custom fields, the Dynamic Registration answer, the
Canvas developer key JSON, and how a launch's platform and roles are named on pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ltikit.lti13 import Message, PlatformConfiguration, ToolConfiguration

LTI_ADVANTAGE_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)


def platform_of(lti: Any) -> str:
    """Which platform launched, as far as the signature proves it: the issuer of a 1.3
    launch, the consumer key that signed a 1.1 launch (its ``tool_consumer_instance_guid``
    is whatever the key's holder chose to send, so it does not keep users apart)."""
    launch = lti.launch
    if launch.version == "1.3":
        return str(launch.claims.get("iss") or "")
    return f"lti11:{launch.consumer_key or ''}"


def platform_name(lti: Any) -> str:
    """What to call the launching platform on a page: its instance name, its product, or
    its issuer's host."""
    platform = lti.launch.platform
    if platform.name:
        return platform.name
    if platform.product_family_code:
        return platform.product_family_code.capitalize()
    return urlsplit(platform_of(lti)).netloc or "your platform"  # 1.3's issuer


def role_names(lti: Any) -> str:
    """The user's roles in the course, short ("Instructor, TeachingAssistant"); the
    institution and system roles only when there is no course role."""
    context = [role.name for role in lti.roles if role.kind == "context"]
    return ", ".join(dict.fromkeys(context or [role.name for role in lti.roles])) or "none"


# Canvas sends no Canvas ids in 1.3 unless asked: these fill lti.canvas.
CANVAS_CUSTOM_FIELDS = {"canvas_user_id": "$Canvas.user.id",
                        "canvas_user_login_id": "$Canvas.user.loginId",
                        "canvas_course_id": "$Canvas.course.id",
                        "canvas_api_domain": "$Canvas.api.domain"}
CANVAS_VISIBILITY = "https://canvas.instructure.com/lti/visibility"


def tool_configuration(config: dict[str, Any]):
    """What this tool registers with a platform that installs it by LTI Dynamic
    Registration: the same placements, services and content selection as
    /lti/config.json, for Canvas, Moodle or any other platform."""

    def configure(platform: PlatformConfiguration) -> ToolConfiguration:
        title = config["TOOL_TITLE"]
        enabled = [name for name, on in config["PLACEMENTS"].items() if on]
        messages = []
        if "course_navigation" in enabled:
            # Who sees the course link (Canvas): the setting applies to this message only.
            messages.append(Message(
                "LtiResourceLinkRequest", "/launch", title, ("course_navigation",),
                extensions={CANVAS_VISIBILITY: config["COURSE_NAVIGATION_VISIBILITY"]}))
        others = tuple(p for p in enabled if p != "course_navigation")
        if others or not messages:
            messages.append(Message("LtiResourceLinkRequest", "/launch", title, others))
        if config["DEEP_LINKING"]:
            # Canvas's "link selection" (Modules > + > External Tool), Moodle's "Select
            # content": a deep linking request answered by /deep-link with one item.
            messages.append(Message("LtiDeepLinkingRequest", "/deep-link", title,
                                    ("link_selection",)))
        return ToolConfiguration(
            name=title, description=config["TOOL_DESCRIPTION"], target_link_uri="/launch",
            messages=tuple(messages),
            scopes=LTI_ADVANTAGE_SCOPES if config["LTI_ADVANTAGE"] else (),
            # Other platforms would send the $Canvas.* variables as written.
            custom_parameters=CANVAS_CUSTOM_FIELDS if platform.is_canvas else {},
            canvas_privacy_level=config["PRIVACY_LEVEL"])

    return configure




def canvas_developer_key(config: dict[str, Any], base: str) -> dict[str, Any]:
    """Canvas's LTI 1.3 developer key JSON (Admin > Developer Keys > + LTI Key > Paste
    JSON) for this tool at ``base``, from the same settings as the 1.1 XML."""
    title = config["TOOL_TITLE"]
    placements = []
    for name, enabled in config["PLACEMENTS"].items():
        if not enabled:
            continue
        placement = {"placement": name, "message_type": "LtiResourceLinkRequest",
                     "target_link_uri": f"{base}/launch", "text": title}
        if name == "course_navigation":
            placement.update(visibility=config["COURSE_NAVIGATION_VISIBILITY"],
                             default="enabled")
        placements.append(placement)
    if config["DEEP_LINKING"]:
        # Canvas's "link selection" (Modules > + > External Tool): a deep linking
        # request answered by /deep-link with one item.
        placements.append({"placement": "link_selection",
                           "message_type": "LtiDeepLinkingRequest",
                           "target_link_uri": f"{base}/deep-link", "text": title})
    return {
        "title": title, "description": config["TOOL_DESCRIPTION"],
        "oidc_initiation_url": f"{base}/lti13/login",
        "target_link_uri": f"{base}/launch",
        "public_jwk_url": f"{base}/lti13/jwks",
        "scopes": list(LTI_ADVANTAGE_SCOPES) if config["LTI_ADVANTAGE"] else [],
        "custom_fields": CANVAS_CUSTOM_FIELDS,
        "extensions": [{
            "platform": "canvas.instructure.com",
            "privacy_level": config["PRIVACY_LEVEL"],
            "domain": urlsplit(base).netloc,
            "tool_id": title.lower().replace(" ", "_"),
            "settings": {"text": title, "placements": placements},
        }],
    }


def lti11_xml_values(config: dict[str, Any], base: str) -> dict[str, Any]:
    """What templates/lti.xml (the 1.1 cartridge with Canvas's placements) is filled with."""
    return {"base": base, "placements": config["PLACEMENTS"], "title": config["TOOL_TITLE"],
            "description": config["TOOL_DESCRIPTION"],
            "privacy_level": config["PRIVACY_LEVEL"],
            "visibility": config["COURSE_NAVIGATION_VISIBILITY"]}
