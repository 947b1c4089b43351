"""LTI 1.3 (LTI Core 1.3, 1EdTech Security Framework 1.0), organised by specification part.

* :mod:`.registrations`: platforms (issuer + client id), their deployments, Canvas presets;
* :mod:`.dynamic_registration`: a platform registers the tool from one URL (LTI Dynamic
  Registration), optionally through single-use links;
* :mod:`.jwks`: platform keys, cached for every worker, re-fetched on an unknown ``kid``;
* :mod:`.id_token`: validation of the launch's ``id_token`` (:mod:`.jws` parses it once);
* :mod:`.oidc`: the OIDC login (signed states), :mod:`.platform_storage`: the same login
  when the browser keeps no cookie (1EdTech Client Side postMessages);
* :mod:`.tool_keys`: the tool's own signing keys;
* :mod:`.services`: access tokens for LTI Advantage, and :mod:`.ags` (grades),
  :mod:`.nrps` (rosters), :mod:`.deep_linking` (content selection).

The Flask wiring (:mod:`ltikit.flask.lti13`) builds on these.
"""

from .dynamic_registration import Message, PlatformConfiguration, ToolConfiguration
from .id_token import MESSAGE_TYPES, VerifiedIdToken, verify_id_token
from .jwks import JWKSCache, JWKSUnavailable
from .registrations import Registration, Registrations, canvas_preset

__all__ = ["MESSAGE_TYPES", "JWKSCache", "JWKSUnavailable", "Message", "PlatformConfiguration",
           "Registration", "Registrations", "ToolConfiguration", "VerifiedIdToken",
           "canvas_preset", "verify_id_token"]
