"""This tool's own tables (ltikit keeps its tables, prefixed ``ltikit_``, in the same
database).  Change them with a new migration in ``migrations/versions``, then run
``python manage.py upgrade``."""

from __future__ import annotations

import time

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, update
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

tool_users = Table(
    "tool_users", metadata,
    # Who launched, per platform: the platform's issuer (1.3) or its instance guid or
    # consumer key (1.1), and its LTI user id (opaque text, up to 255 characters in 1.3).
    Column("platform", String(255), primary_key=True),
    Column("user_id", String(255), primary_key=True),
    Column("name", String(255)),
    Column("first_launch_at", BigInteger, nullable=False),
    Column("last_launch_at", BigInteger, nullable=False),
)


def record_launch(engine: Engine, platform: str, user_id: str, name: str | None) -> None:
    now = int(time.time())
    key = (tool_users.c.platform == platform) & (tool_users.c.user_id == user_id)
    with engine.begin() as conn:
        if conn.execute(update(tool_users).where(key).values(
                name=name, last_launch_at=now)).rowcount:
            return
        try:
            with conn.begin_nested():
                conn.execute(tool_users.insert().values(
                    platform=platform, user_id=user_id, name=name,
                    first_launch_at=now, last_launch_at=now))
        except IntegrityError:  # the same user launching twice at once
            pass
