"""LTI 1.3 (LTI Core 1.3, 1EdTech Security Framework 1.0), organised by specification part.

* :mod:`.registrations`: platforms (issuer + client id), their deployments, Canvas presets;
* :mod:`.jwks`: platform keys, cached for every worker, re-fetched on an unknown ``kid``;
* :mod:`.id_token`: validation of the launch's ``id_token``.

The OIDC login flow, tool keys and the Flask wiring build on these.
"""

from .id_token import MESSAGE_TYPES, VerifiedIdToken, verify_id_token
from .jwks import JWKSCache, JWKSUnavailable
from .registrations import Registration, Registrations, canvas_preset

__all__ = ["MESSAGE_TYPES", "JWKSCache", "JWKSUnavailable", "Registration", "Registrations",
           "VerifiedIdToken", "canvas_preset", "verify_id_token"]
