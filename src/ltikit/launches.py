"""Launch state on the server, and the opaque launch id the browser carries.

A verified launch is stored under a random id; the browser gets only that id, signed with
the app's secret key, so it can neither read the launch nor forge another one.  Each
launch has its own id, which is why two tabs launched from two courses keep their own
launches: the tool's links carry the id of the launch they belong to (see
``LTI.url_for`` in the Flask adapter), and a cookie keeps the most recent one as a
fallback for links that do not.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

from .errors import LTIAuthenticationError, LTIConfigurationError, LTINotInSessionException
from .launch import Launch
from .lti11.launch import VerifiedLaunch
from .storage import LaunchStorage

DEFAULT_LAUNCH_LIFETIME = 8 * 3600


@dataclass(frozen=True, slots=True)
class ActiveLaunch:
    """A launch the current request belongs to: its signed id and its model."""

    token: str
    launch: Launch

    @property
    def id(self) -> str:
        return self.token.rsplit(".", 1)[0]


class LaunchManager:
    def __init__(self, storage: LaunchStorage, secret_key: str | bytes, *,
                 lifetime: int = DEFAULT_LAUNCH_LIFETIME, timestamp_window: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret_key:
            raise LTIConfigurationError("A secret key is needed to sign launch ids "
                                        "(Flask: set SECRET_KEY).", reason="no_secret_key")
        self.storage = storage
        self.lifetime = lifetime
        self.timestamp_window = timestamp_window
        self._signer = Signer(secret_key, salt="ltikit.launch-id")
        self._clock = clock

    def start(self, verified: VerifiedLaunch) -> ActiveLaunch:
        """Claim the launch's nonce and store it; a second use of the nonce is a replay."""
        launch_id = secrets.token_urlsafe(18)
        now = int(self._clock())
        stored = self.storage.begin_launch(
            consumer_key=verified.consumer_key, nonce=verified.nonce,
            # The timestamp check refuses the message after timestamp + window, so the
            # nonce need not be remembered any longer than that.
            nonce_expires_at=verified.timestamp + self.timestamp_window + 1,
            launch_id=launch_id, data=verified.launch.to_stored(),
            expires_at=now + self.lifetime)
        if not stored:
            raise LTIAuthenticationError("This launch was already used; open the tool again "
                                         "from the course.", reason="replayed_nonce")
        return ActiveLaunch(self._signer.sign(launch_id).decode("ascii"), verified.launch)

    def resume(self, token: str | None) -> ActiveLaunch:
        """The launch a signed id refers to, or :class:`LTINotInSessionException`."""
        if not token:
            raise LTINotInSessionException(reason="no_launch")
        try:
            launch_id = self._signer.unsign(token).decode("ascii")
        except (BadSignature, UnicodeError):
            raise LTINotInSessionException(reason="bad_launch_id") from None
        data = self.storage.load_launch(launch_id, int(self._clock()))
        if data is None:
            raise LTINotInSessionException(reason="launch_expired")
        return ActiveLaunch(token, Launch.from_stored(data))

    def end(self, active: ActiveLaunch) -> None:
        self.storage.delete_launch(active.id)
