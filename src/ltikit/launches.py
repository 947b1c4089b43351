"""Launch state on the server, and the opaque launch id the browser carries.

A verified launch is stored under a random id; the browser gets only that id, signed with
the app's secret key, so it can neither read the launch nor forge another one.  Each
launch has its own id, which is why two tabs launched from two courses keep their own
launches: the tool's links carry the id of the launch they belong to (see
``LTI.url_for`` in the Flask adapter), and a cookie keeps the most recent one as a
fallback for links that do not.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature

from .errors import LTIAuthenticationError, LTIConfigurationError, LTINotInSessionException
from .launch import Launch
from .lti11.launch import VerifiedLaunch
from .signing import CachedKeySigner, CachedKeyTimestampSigner
from .storage import LaunchStorage

if TYPE_CHECKING:
    from .lti13.id_token import VerifiedIdToken

DEFAULT_LAUNCH_LIFETIME = 8 * 3600

HANDOFF_SECONDS = 60
"""How long a hand-off link (one redirect URI, :mod:`ltikit.flow`) may wait to be
followed: the browser follows it at once."""


class ActiveLaunch:
    """A launch the current request belongs to: its signed id and its model.

    The :class:`~ltikit.launch.Launch` is built on first use, from the verified parameters
    or the stored ones: a view that only needs the user id does not pay for the rest.
    """

    __slots__ = ("_launch", "_stored", "row_id", "token")

    def __init__(self, token: str, row_id: int, stored: Mapping[str, Any] | None = None,
                 launch: Launch | None = None) -> None:
        self.token = token
        self.row_id = row_id
        self._stored = stored
        self._launch = launch

    @property
    def launch(self) -> Launch:
        if self._launch is None:
            assert self._stored is not None
            self._launch = Launch.from_stored(self._stored)
        return self._launch

    @property
    def params(self) -> Mapping[str, str]:
        """The launch parameters, without building the model."""
        if self._stored is not None:
            return MappingProxyType(self._stored.get("params") or {})
        return self.launch.params

    @property
    def consumer_key(self) -> str | None:
        if self._stored is not None:
            return self._stored.get("consumer_key") or self._stored.get("client_id")
        return self.launch.consumer_key

    @property
    def lti11_params(self) -> Mapping[str, str] | None:
        """The LTI 1.1 parameters when this is a 1.1 launch (cheap: no model is built)."""
        stored = self._stored
        if stored is not None and stored.get("version") == "1.1":
            params: Mapping[str, str] = stored["params"]
            return params
        return None


class LaunchManager:
    """Starts launches (claiming their nonce) and finds them again from their signed id.

    The id the browser carries is ``<row>-<random>`` signed with the app's secret key: the
    signature turns away forged ids without a database query, and the random part, kept
    in the row, means that even someone holding the secret key cannot take over another
    user's launch by guessing row numbers.
    """

    def __init__(self, storage: LaunchStorage, secret_key: str | bytes, *,
                 lifetime: int = DEFAULT_LAUNCH_LIFETIME, timestamp_window: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret_key:
            raise LTIConfigurationError("A secret key is needed to sign launch ids "
                                        "(Flask: set SECRET_KEY).", reason="no_secret_key")
        self.storage = storage
        self.lifetime = lifetime
        self.timestamp_window = timestamp_window
        self._signer = CachedKeySigner(secret_key, salt="ltikit.launch-id")
        self._handoff_signer = _ClockedSigner(secret_key, salt="ltikit.launch-handoff",
                                              clock=clock)
        self._clock = clock

    def start(self, verified: VerifiedLaunch) -> ActiveLaunch:
        """Claim the launch's nonce and store it; a second use of the nonce is a replay."""
        secret = secrets.token_urlsafe(16)
        expires_at = int(self._clock()) + self.lifetime
        stored = {"version": "1.1", "consumer_key": verified.consumer_key,
                  "params": verified.params, "expires_at": expires_at}
        row_id = self.storage.begin_launch(
            issuer=verified.consumer_key, nonce=verified.nonce, secret=secret,
            data=json.dumps(stored, separators=(",", ":")),
            # The row is also the record of the nonce, which must be kept until the
            # timestamp check refuses the message anyway, however short the launch lives.
            expires_at=max(expires_at, verified.timestamp + self.timestamp_window + 1))
        if row_id is None:
            raise LTIAuthenticationError("This launch was already used; open the tool again "
                                         "from the course.", reason="replayed_nonce")
        token = self._signer.sign(f"{row_id}-{secret}").decode("ascii")
        return ActiveLaunch(token, row_id, stored, verified.built_launch)

    def start_lti13(self, verified: VerifiedIdToken) -> ActiveLaunch:
        """Claim a verified LTI 1.3 launch's nonce and store it (one row, as for 1.1)."""
        registration, claims = verified.registration, verified.claims
        secret = secrets.token_urlsafe(16)
        now = int(self._clock())
        expires_at = now + self.lifetime
        stored = {"version": "1.3", "client_id": registration.client_id,
                  "issuer": registration.issuer, "claims": dict(claims),
                  "expires_at": expires_at}
        nonce = str(claims["nonce"])
        if len(nonce) > 255:
            raise LTIAuthenticationError("The launch nonce is too long.", reason="bad_nonce")
        # Nonces are unique per registration: the "issuer" column holds issuer + client id
        # (hashed, so long values fit).
        issuer_key = hashlib.sha256(f"{registration.issuer} {registration.client_id}"
                                    .encode()).hexdigest()
        row_id = self.storage.begin_launch(
            issuer=f"lti13:{issuer_key}", nonce=nonce, secret=secret,
            data=json.dumps(stored, separators=(",", ":")),
            expires_at=max(expires_at, int(claims.get("exp", now)) + self.timestamp_window))
        if row_id is None:
            raise LTIAuthenticationError("This launch was already used; open the tool again "
                                         "from the course.", reason="replayed_nonce")
        token = self._signer.sign(f"{row_id}-{secret}").decode("ascii")
        return ActiveLaunch(token, row_id, stored)

    def resume(self, token: str | None) -> ActiveLaunch:
        """The launch a signed id refers to, or :class:`LTINotInSessionException`."""
        if not token:
            raise LTINotInSessionException(reason="no_launch")
        try:
            row, _, secret = self._signer.unsign(token).decode("ascii").partition("-")
            row_id = int(row)
        except (BadSignature, UnicodeError, ValueError):
            raise LTINotInSessionException(reason="bad_launch_id") from None
        now = int(self._clock())
        data = self.storage.load_launch(row_id, secret, now)
        stored = json.loads(data) if data is not None else None
        if stored is None or stored.get("expires_at", 0) <= now:
            raise LTINotInSessionException(reason="launch_expired")
        return ActiveLaunch(token, row_id, stored)

    # -- the hand-off from the one redirect URI to the launch's target page ---------------
    def handoff(self, active: ActiveLaunch) -> str:
        """A single-use token, valid :data:`HANDOFF_SECONDS`, that gives ``active`` to the
        page the launch was meant for as that page's new launch."""
        return self._handoff_signer.sign(active.token).decode("ascii")

    def take_handoff(self, handoff: str) -> ActiveLaunch:
        """The launch a hand-off token gives, once; a second use is refused (a hand-off
        link found later in a history or a log does not start a launch again)."""
        try:
            token = self._handoff_signer.unsign(handoff, max_age=HANDOFF_SECONDS)
        except BadSignature:
            raise LTIAuthenticationError("This link into the tool is invalid or has expired; "
                                         "open the tool again from the course.",
                                         reason="bad_handoff") from None
        active = self.resume(token.decode("ascii"))
        # Claimed in the nonce ledger (the launches table's unique issuer and nonce): one
        # insert, atomic across processes.  The row holds no launch (a random secret that
        # no launch id carries) and goes with the launch it stands for.
        claimed = self.storage.begin_launch(
            issuer="ltikit:handoff", nonce=str(active.row_id), secret=secrets.token_urlsafe(16),
            data="{}", expires_at=int(self._clock()) + HANDOFF_SECONDS + 1)
        if claimed is None:
            raise LTIAuthenticationError("This link into the tool was already used; open the "
                                         "tool again from the course.", reason="handoff_used")
        return active

    def end(self, active: ActiveLaunch) -> None:
        self.storage.delete_launch(active.row_id)


class _ClockedSigner(CachedKeyTimestampSigner):
    """ltikit's timestamped signer on the launch manager's clock (tests move it)."""

    def __init__(self, secret_key: str | bytes, *, salt: str,
                 clock: Callable[[], float]) -> None:
        super().__init__(secret_key, salt=salt)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())
