"""Canvas REST API access as the launching user: OAuth2, tokens at rest, a ready client.

Framework-agnostic parts (the Flask adapter wires them to routes):

* :mod:`.instances`: the Canvas instances a tool serves, each with its developer key;
* :mod:`.oauth`: the authorize URL, code exchange, refresh and revocation, with Canvas's
  quirks handled;
* :mod:`.tokens`: tokens per (instance, Canvas user id), encrypted, refreshed exactly once
  when many requests need it; OAuth ``state`` records, single-use and short-lived;
* :mod:`.client`: a ``canvasapi.Canvas`` that refreshes on a 401 and retries once.
"""

from .client import CanvasTokenAuth, canvas_for_user
from .instances import CanvasInstance, CanvasNotConfigured, instance_for, instances_from_config
from .oauth import CanvasOAuthClient, CanvasOAuthError, CanvasUnavailable, TokenResponse
from .tokens import CanvasAuthorizationRequired, CanvasTokens, OAuthStates

__all__ = [
    "CanvasAuthorizationRequired", "CanvasInstance", "CanvasNotConfigured", "CanvasOAuthClient",
    "CanvasOAuthError", "CanvasTokenAuth", "CanvasTokens", "CanvasUnavailable", "OAuthStates",
    "TokenResponse", "canvas_for_user", "instance_for", "instances_from_config",
]
