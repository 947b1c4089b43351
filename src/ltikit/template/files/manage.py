"""Commands for this tool: ``python manage.py upgrade | revision | run | keys |
registration-link``.

    python manage.py upgrade                  # create/upgrade the database (ltikit's and ours)
    python manage.py revision -m "add notes"  # a new migration of our tables (migrations/)
    python manage.py revision -m "..." --autogenerate   # ... written from models.py's changes
    python manage.py run                      # development server on http://127.0.0.1:5000
                                              # (Flask's, or uvicorn for a FastAPI app)
    python manage.py keys                     # print a new TOKEN_ENCRYPTION_KEYS value
    python manage.py registration-link --url https://tool.example.edu [--days 7]
                                              # a single-use link that installs the tool
                                              # in Canvas or Moodle (Dynamic Registration)

Missing or wrong settings are listed, one line each, instead of a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def database_url() -> str:
    from settings import flask_config, load_dotenv_file

    load_dotenv_file()
    url: str = flask_config()["LTIKIT_DATABASE_URL"]
    return url


def alembic_config() -> Any:
    """Alembic's configuration for this tool's own migrations (``migrations/``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE / "migrations"))
    return config


def upgrade(url: str | None = None, *, quiet: bool = False) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from ltikit.storage import upgrade as ltikit_upgrade

    url = url or database_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    ltikit_upgrade(url)
    config = alembic_config()
    with create_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    if not quiet:
        print("database is up to date")


def revision(message: str, *, autogenerate: bool = False) -> None:
    """Write a new migration, numbered after the last one (0003, 0004, ...)."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    config = alembic_config()
    heads = ScriptDirectory.from_config(config).get_heads()
    numbered = [int(h) for h in heads if re.fullmatch(r"\d+", h)]
    rev_id = f"{max(numbered) + 1:04d}" if numbered and len(heads) == 1 else None
    if not autogenerate:
        command.revision(config, message=message, rev_id=rev_id)
        return
    # Autogenerate compares models.py with the database, which must be up to date.
    with create_engine(database_url()).begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, rev_id=rev_id, autogenerate=True)


def registration_link(url: str, days: float, note: str | None = None) -> str:
    """A single-use LTI Dynamic Registration link for this tool at ``url`` (its public
    address), valid ``days``."""
    from sqlalchemy import create_engine

    from ltikit.lti13.dynamic_registration import RegistrationLinks, registration_url

    upgrade(quiet=True)
    engine = create_engine(database_url())
    try:
        secret = RegistrationLinks(engine).create(lifetime=days * 86400, note=note)
    finally:
        engine.dispose()
    return registration_url(url, "/lti13/register", secret)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["upgrade", "revision", "run", "keys",
                                            "registration-link"])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("-m", "--message", help="revision: what the migration does")
    parser.add_argument("--autogenerate", action="store_true",
                        help="revision: write the changes of models.py into it")
    parser.add_argument("--url", help="registration-link: this tool's public URL, "
                        "like https://tool.example.edu")
    parser.add_argument("--days", type=float, default=7.0,
                        help="registration-link: how long the link is valid")
    parser.add_argument("--note", help="registration-link: which platform it is for")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from settings import SettingsError

    try:
        if args.command == "upgrade":
            upgrade()
        elif args.command == "revision":
            if not args.message:
                parser.error('revision needs -m "what the migration does"')
            revision(args.message, autogenerate=args.autogenerate)
        elif args.command == "registration-link":
            from ltikit.urls import origin

            if not args.url or origin(args.url) is None or "?" in args.url:
                parser.error("registration-link needs --url, this tool's public URL "
                             "(https://tool.example.edu)")
            if args.days <= 0:
                parser.error("--days must be positive")
            print(registration_link(args.url, args.days, args.note))
            print("Single use. Paste it into Canvas (Admin > Developer Keys > + Developer "
                  "Key > + LTI Registration) or Moodle (Site administration > Plugins > "
                  "Manage tools > Tool URL > Add LTI Advantage).", file=sys.stderr)
        elif args.command == "keys":
            from ltikit.crypto import SecretBox

            print(SecretBox.generate_key())
        else:
            from app import create_app

            app = create_app()
            if hasattr(app, "run"):  # Flask
                app.run(host="127.0.0.1", port=args.port)
            else:  # FastAPI (ltikit new --framework fastapi)
                import uvicorn

                uvicorn.run(app, host="127.0.0.1", port=args.port)
    except SettingsError as exc:
        print("The settings need fixing (in .env or the environment; see .env.example):",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
