"""One tool's ltikit, assembled from its settings, for any web framework: :class:`Tool`.

An adapter (:mod:`ltikit.flask`, :mod:`ltikit.starlette`) makes one :class:`Tool` per app
and only translates requests and replies; everything decided or kept is here, built once:
the parsed settings, the store, the LTI 1.1 consumers, the role groups, the cookie
policy, the launches, the LTI 1.3 services (:class:`LTI13Services`), and the flows
(:class:`ltikit.flow.LaunchFlow`, :class:`ltikit.lti13.flow.LTI13Flow`,
:class:`ltikit.lti13.dynamic_registration.RegistrationFlow`).  So both adapters make the
same decisions with the same code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .canvas.instances import CanvasInstance, instances_from_config
from .canvas.services import CanvasServices
from .cookies import CookiePolicy
from .errors import LTIConfigurationError, LTIException
from .flow import LaunchFlow
from .launches import LaunchManager
from .lti11.consumers import ConsumerRegistry, consumers_from_config
from .lti13.dynamic_registration import (
    PlatformConfiguration,
    RegistrationFlow,
    ToolConfiguration,
)
from .lti13.flow import LTI13Flow
from .lti13.oidc import OIDCStates
from .lti13.services import ServiceClient, ServiceTokens
from .lti13.tool_keys import ToolKeys
from .roles import RoleGroups
from .settings import DEFAULTS, Settings
from .storage import SQLStorage
from .storage.sql import current_revision, head_revision, upgrade
from .store import Store

if TYPE_CHECKING:
    from .launch import Launch
    from .lti13.registrations import Registration

__all__ = ["LTI13Services", "Tool"]

SecretKey = str | bytes


class Tool:
    """ltikit for one tool (see the module docstring).

    ``config``: the ``LTIKIT_*`` settings (missing ones take :data:`ltikit.settings.DEFAULTS`;
    ``PYLTI_CONFIG`` is read too).  ``secret_key``: what signs launch ids, login states and
    registration forms, or a function giving it (Flask apps often set theirs after the
    extension is made).  ``database``: a URL, a :class:`~ltikit.store.Store` or an
    :class:`~ltikit.storage.SQLStorage` (default: ``LTIKIT_DATABASE_URL``, else
    ``default_database``).  ``clock`` times launches, keys and tokens (tests pass
    :class:`ltikit.testing.Clock`).
    """

    def __init__(self, config: Mapping[str, Any], *,
                 secret_key: SecretKey | Callable[[], SecretKey | None] | None,
                 database: str | Store | SQLStorage | None = None,
                 default_database: str | None = None,
                 role_groups: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] | None = None,
                 tool_configuration: Callable[[PlatformConfiguration], ToolConfiguration]
                 | None = None) -> None:
        merged = dict(DEFAULTS)
        merged.update(config)
        self.config: Mapping[str, Any] = merged
        # Parsed and checked once: a bad setting fails here, at start-up.
        self.settings = settings = Settings.load(config)
        self._secret_key = secret_key
        static = consumers_from_config((merged.get("PYLTI_CONFIG") or {}).get("consumers"))
        static.update(consumers_from_config(merged["LTIKIT_CONSUMERS"]))
        keys = merged.get("LTIKIT_ENCRYPTION_KEYS") or None
        if isinstance(database, Store):
            self.store = database
        else:
            url = database or merged["LTIKIT_DATABASE_URL"] or default_database
            if url is None:
                raise LTIConfigurationError("Give the tool a database (LTIKIT_DATABASE_URL).",
                                            reason="bad_setting")
            self.store = Store(url, encryption_keys=keys, clock=clock or time.time)
        # One clock for everything the tool times: the one given, else the store's.
        self.clock: Callable[[], float] = clock or self.store.clock
        self.storage: SQLStorage = self.store.sql
        if merged["LTIKIT_AUTO_UPGRADE"]:
            _upgrade_once(self.storage)
        self.consumers = ConsumerRegistry(static, self.storage)
        groups = dict(merged["LTIKIT_ROLE_GROUPS"])
        groups.update(role_groups or {})
        self.role_groups = RoleGroups(groups)
        self.cookies = CookiePolicy(secure=settings.cookie_secure,
                                    partitioned=settings.cookie_partitioned)
        self.canvas_instances: dict[str, CanvasInstance] = \
            instances_from_config(merged["LTIKIT_CANVAS_INSTANCES"])
        #: The Canvas API as the launching user, when Canvas instances are configured.
        self.canvas: CanvasServices | None = \
            CanvasServices(self, self.canvas_instances) if self.canvas_instances else None
        self.tool_configuration = tool_configuration
        if settings.lti13_registration != "off" and tool_configuration is None:
            raise LTIConfigurationError(
                f"LTIKIT_LTI13_REGISTRATION is {settings.lti13_registration!r}, but the app "
                "gives no tool configuration: LTIKit(app, tool_configuration=...) says what "
                "to register.", reason="bad_setting")
        self._lock = threading.Lock()
        self._launches: LaunchManager | None = None
        self._lti13: LTI13Services | None = None
        self._flow: LaunchFlow | None = None
        self._registration: RegistrationFlow | None = None

    @property
    def secret_key(self) -> SecretKey:
        key = self._secret_key() if callable(self._secret_key) else self._secret_key
        return key or ""

    # Made on first use: a PyLTI-style app sets its secret key after creating the app, and
    # a tool that never sees LTI 1.3 never needs its services.
    @property
    def launches(self) -> LaunchManager:
        if self._launches is None:
            with self._lock:
                if self._launches is None:
                    self._launches = LaunchManager(
                        self.storage, self.secret_key, lifetime=self.settings.launch_lifetime,
                        timestamp_window=self.settings.timestamp_window, clock=self.clock)
        return self._launches

    @property
    def lti13(self) -> LTI13Services:
        if self._lti13 is None:
            with self._lock:
                if self._lti13 is None:
                    self._lti13 = LTI13Services(self)
        return self._lti13

    @property
    def flow(self) -> LaunchFlow:
        """What a protected view decides (:class:`ltikit.flow.LaunchFlow`)."""
        if self._flow is None:
            with self._lock:
                if self._flow is None:
                    self._flow = LaunchFlow(self.settings, self.consumers, self.role_groups,
                                            self.cookies, lambda: self.launches,
                                            lambda: self.lti13.flow)
        return self._flow

    @property
    def registration(self) -> RegistrationFlow:
        """LTI Dynamic Registration at ``LTIKIT_LTI13_REGISTRATION_PATH``."""
        if self._registration is None:
            with self._lock:
                if self._registration is None:
                    if not self.secret_key:
                        raise LTIConfigurationError("Dynamic Registration needs a secret key.",
                                                    reason="no_secret_key")
                    settings = self.settings
                    self._registration = RegistrationFlow(
                        self.store.registrations, self.store.registration_links,
                        policy=settings.lti13_registration, secret_key=self.secret_key,
                        tool_configuration=self.tool_configuration,
                        login_path=settings.lti13_login_path,
                        jwks_path=settings.lti13_jwks_path,
                        redirect_uri=settings.lti13_redirect_uri,
                        timeout=settings.lti13_registration_timeout, clock=self.clock,
                        prepare=self._first_tool_key)
        return self._registration

    def _first_tool_key(self) -> None:
        """A tool registered with a platform publishes a key at its JWKS URL: the first one
        is made (``ltikit tool-keys generate``) when there is none and keys can be stored
        encrypted."""
        if self.store.box is None:
            return
        keys = self.store.tool_keys
        if not keys.jwks()["keys"]:
            keys.generate()


class LTI13Services:
    """A tool's LTI 1.3 parts: registrations, the platforms' key sets, signed login states,
    the login and launch flow, the tool's keys, and clients for LTI Advantage services."""

    def __init__(self, tool: Tool) -> None:
        store = tool.store
        self.tool = tool
        self.registrations = store.registrations
        settings = tool.settings
        self.jwks = store.jwks(refetch_interval=settings.lti13_jwks_refetch_interval,
                               timeout=settings.lti13_jwks_timeout)
        self.service_timeout = settings.lti13_service_timeout
        if not tool.secret_key:
            raise LTIConfigurationError("LTI 1.3 logins need a secret key (Flask: set "
                                        "SECRET_KEY).", reason="no_secret_key")
        self.states = OIDCStates(tool.secret_key)
        self.flow = LTI13Flow(self.registrations, self.jwks, self.states, tool.cookies,
                              target_link_uris=settings.lti13_target_link_uris,
                              leeway=settings.lti13_leeway,
                              redirect_uri=settings.lti13_redirect_uri)
        self._service_tokens: ServiceTokens | None = None

    def tool_keys(self) -> ToolKeys:
        """The tool's signing keys (needs LTIKIT_ENCRYPTION_KEYS: private keys are encrypted)."""
        return self.tool.store.tool_keys

    def registration_of(self, launch: Launch) -> Registration:
        """The registration a stored LTI 1.3 launch came through."""
        registration = self.registrations.get(str(launch.claims.get("iss")),
                                              launch.consumer_key or "")
        if registration is None:
            raise LTIException("The platform of this launch is no longer registered.",
                               reason="unknown_platform")
        return registration

    def service_client(self, launch: Launch) -> ServiceClient:
        """An authenticated client for the services of ``launch``'s platform."""
        registration = self.registration_of(launch)
        if self._service_tokens is None:
            connect, total = self.service_timeout
            self._service_tokens = self.tool.store.service_tokens(
                timeout=(connect, min(total, 8.0)))
        return ServiceClient(self._service_tokens, registration, timeout=self.service_timeout)


_upgrade_lock = threading.Lock()


def _upgrade_once(storage: SQLStorage) -> None:
    with _upgrade_lock:
        try:
            if current_revision(storage.engine) == head_revision():
                return
            upgrade(storage.engine)
        except Exception:
            # Another worker may have run the same migration at the same moment.
            time.sleep(0.2)
            if current_revision(storage.engine) != head_revision():
                raise
