"""Commands for this tool: ``python manage.py upgrade | run | keys``.

    python manage.py upgrade   # create/upgrade the database (ltikit's tables and ours)
    python manage.py run       # development server on http://127.0.0.1:5000
    python manage.py keys      # print a new TOKEN_ENCRYPTION_KEYS value
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def upgrade(database_url: str | None = None, *, quiet: bool = False) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from ltikit.storage import upgrade as ltikit_upgrade
    from settings import flask_config, load_dotenv_file

    if database_url is None:
        load_dotenv_file()
        database_url = flask_config()["LTIKIT_DATABASE_URL"]
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    ltikit_upgrade(database_url)
    config = Config()
    config.set_main_option("script_location", str(HERE / "migrations"))
    with create_engine(database_url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if not quiet:
        print("database is up to date")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["upgrade", "run", "keys"])
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if args.command == "upgrade":
        upgrade()
    elif args.command == "keys":
        from ltikit.crypto import SecretBox

        print(SecretBox.generate_key())
    else:
        from app import create_app

        create_app().run(host="127.0.0.1", port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
