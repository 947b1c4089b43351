"""The ``ltikit`` command: database migrations and LTI 1.1 consumers.

    ltikit db upgrade --database-url sqlite:///instance/ltikit.sqlite3
    ltikit consumers add my-canvas            # prints a new random secret once
    ltikit consumers list
    ltikit consumers remove my-canvas

The database URL comes from ``--database-url`` or the ``LTIKIT_DATABASE_URL``
environment variable.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence


def _storage(args: argparse.Namespace):
    from ..storage import SQLStorage

    url = args.database_url or os.environ.get("LTIKIT_DATABASE_URL")
    if not url:
        sys.exit("ltikit: give --database-url or set LTIKIT_DATABASE_URL")
    return SQLStorage(url)


def _db_upgrade(args: argparse.Namespace) -> int:
    from ..storage.sql import current_revision, upgrade

    storage = _storage(args)
    upgrade(storage.engine, args.revision)
    print(f"ltikit tables at revision {current_revision(storage.engine)}")
    return 0


def _consumers_add(args: argparse.Namespace) -> int:
    from ..storage.sql import upgrade

    storage = _storage(args)
    upgrade(storage.engine)
    generated = args.secret is None
    secret = args.secret or secrets.token_urlsafe(32)
    try:
        storage.add_consumer(args.key, secret)
    except ValueError as exc:
        print(f"ltikit: {exc}", file=sys.stderr)
        return 1
    print(f"consumer key: {args.key}")
    if generated:
        print(f"shared secret: {secret}\n(shown once: paste it into the LMS now)")
    return 0


def _consumers_list(args: argparse.Namespace) -> int:
    from ..storage.sql import upgrade

    storage = _storage(args)
    upgrade(storage.engine)
    for key in storage.consumer_keys():
        print(key)
    return 0


def _consumers_remove(args: argparse.Namespace) -> int:
    storage = _storage(args)
    if storage.remove_consumer(args.key):
        print(f"removed {args.key}")
        return 0
    print(f"ltikit: no consumer {args.key!r}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltikit", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="SQLAlchemy URL of ltikit's database")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True)
    up = db.add_parser("upgrade", help="create or upgrade ltikit's tables")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db_upgrade)

    consumers = commands.add_parser("consumers", help="LTI 1.1 consumer keys").add_subparsers(
        dest="consumers_command", required=True)
    add = consumers.add_parser("add", help="add a consumer key (secret generated if omitted)")
    add.add_argument("key")
    add.add_argument("--secret", help="use this secret instead of generating one")
    add.set_defaults(func=_consumers_add)
    consumers.add_parser("list", help="list consumer keys").set_defaults(func=_consumers_list)
    remove = consumers.add_parser("remove", help="remove a consumer key")
    remove.add_argument("key")
    remove.set_defaults(func=_consumers_remove)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
