"""The Canvas instances a tool serves, each with its own API developer key.

A launch names its Canvas in ``custom_canvas_api_domain`` (LTI 1.1; a custom field in
LTI 1.3).  That value comes from the launch, so it is only trusted after the signature
check, and only if it is one of the configured instances: a tool never sends a user, or
its client secret, to a Canvas it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import CanvasNotConfigured as CanvasNotConfigured
from ..errors import LTIConfigurationError

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class CanvasInstance:
    """One Canvas (``domain`` as Canvas sends it: ``canvas.example.edu``, or
    ``localhost:8000`` for the local platform) and the tool's API developer key there."""

    domain: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    base_url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without ``/api/v1`` (what ``canvasapi.Canvas`` wants)."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.domain.split(":")[0]
        scheme = "http" if host in _LOCAL_HOSTS else "https"
        return f"{scheme}://{self.domain}"


def instances_from_config(config: Mapping[str, Mapping[str, Any]] | None
                          ) -> dict[str, CanvasInstance]:
    """``{domain: {"client_id", "client_secret", "scopes", "base_url"?}}`` → instances."""
    instances: dict[str, CanvasInstance] = {}
    for domain, values in (config or {}).items():
        client_id, secret = values.get("client_id"), values.get("client_secret")
        if not client_id or not secret:
            raise LTIConfigurationError(
                f"Canvas instance {domain!r} needs a client_id and a client_secret.",
                reason="canvas_instance_incomplete")
        scopes = values.get("scopes") or ()
        if isinstance(scopes, str):
            scopes = scopes.split()
        base_url = values.get("base_url")
        if base_url and not str(base_url).startswith("https://") and \
                not any(f"//{h}" in str(base_url) for h in _LOCAL_HOSTS):
            raise LTIConfigurationError(
                f"Canvas instance {domain!r}: base_url must be https:// (tokens travel "
                "there).", reason="canvas_instance_insecure")
        instances[domain.lower()] = CanvasInstance(
            domain=domain.lower(), client_id=str(client_id), client_secret=str(secret),
            scopes=tuple(_as_list(scopes)), base_url=base_url)
    return instances


def _as_list(values: Iterable[str]) -> list[str]:
    return [str(v) for v in values if str(v).strip()]


def instance_for(instances: Mapping[str, CanvasInstance], api_domain: str | None
                 ) -> CanvasInstance:
    if not api_domain:
        raise CanvasNotConfigured(
            "The launch did not say which Canvas it came from (custom_canvas_api_domain): "
            "install the tool with privacy level public, or add the custom field "
            "canvas_api_domain=$Canvas.api.domain.", reason="no_canvas_domain")
    instance = instances.get(api_domain.lower())
    if instance is None:
        raise CanvasNotConfigured(
            f"This tool is not set up for the Canvas at {api_domain}; ask your Canvas "
            "administrator to contact the tool's maintainers.")
    return instance
