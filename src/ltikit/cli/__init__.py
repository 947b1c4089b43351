"""The ``ltikit`` command: database migrations, LTI 1.1 consumers, the local platform.

    ltikit db upgrade --database-url sqlite:///instance/ltikit.sqlite3
    ltikit consumers add my-canvas            # prints a new random secret once
    ltikit consumers list
    ltikit consumers remove my-canvas
    ltikit platform [--host 127.0.0.1] [--port 8000] [--data platform.sqlite3]
        [--issuer https://canvas.instructure.com] [--allowed-host NAME ...]
        [--fault token:status=429,retry_after=5 ...]
    ltikit platform add-tool --key K --secret S (--url URL | --config-url URL) [--name N]
    ltikit platform add-lti13-tool --config-url URL [--name N] [--platform-url URL]
        [--issuer ISS]
    ltikit platform add-key --name N --redirect-uri URI [--scope S ...]
    ltikit registrations add-canvas CLIENT_ID CANVAS_DOMAIN [--environment beta]
    ltikit registrations add --issuer ISS --client-id ID --auth-login-url U --token-url U
        (--jwks-url U | --public-jwk FILE) [--deployment ID ...] [--platform-storage]
        [--service-origin ORIGIN ...]
    ltikit registrations list
    ltikit registration-link --tool-url https://tool.example.edu [--days 7] [--note N]
        # a single-use LTI Dynamic Registration link (LTIKIT_LTI13_REGISTRATION=links)
    ltikit tool-keys generate | rotate [--overlap-days 7] | jwks   # LTI 1.3 tool keys
    ltikit new my-tool [--title "My Tool"] [--framework fastapi]   # a new tool project
    ltikit keys generate                      # a key for LTIKIT_ENCRYPTION_KEYS
    ltikit keys rotate                        # re-encrypt stored tokens with the first key

The database URL comes from ``--database-url`` or the ``LTIKIT_DATABASE_URL``
environment variable.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..lti13 import Registrations
    from ..storage import SQLStorage


def _storage(args: argparse.Namespace) -> SQLStorage:
    from ..crypto import SecretBox
    from ..storage import SQLStorage

    url = args.database_url or os.environ.get("LTIKIT_DATABASE_URL")
    if not url:
        sys.exit("ltikit: give --database-url or set LTIKIT_DATABASE_URL")
    keys = os.environ.get("LTIKIT_ENCRYPTION_KEYS")
    return SQLStorage(url, secret_box=SecretBox(keys) if keys else None)


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
    if storage.secret_box is None:
        print("ltikit: LTIKIT_ENCRYPTION_KEYS is not set: the secret is stored unencrypted "
              "(set it, from `ltikit keys generate`, to encrypt consumer secrets)",
              file=sys.stderr)
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


DEFAULT_PLATFORM_DATA = "ltikit-platform.sqlite3"
CANVAS_CLOUD_ISSUER = "https://canvas.instructure.com"


def _platform_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import run_simple

    from ..platform import create_app

    data = Path(args.data)
    if args.reset and data.exists():
        data.unlink()
    config: dict[str, object] = {"LTI13_ISSUER": args.issuer or None}
    if args.token_lifetime is not None:
        config["TOKEN_LIFETIME"] = args.token_lifetime or None
    from ..urls import is_loopback

    hosts = list(args.allowed_host or ())
    if not is_loopback(args.host):
        if args.host not in ("0.0.0.0", "::"):  # noqa: S104 - only compared
            hosts.append(args.host)
        print(f"ltikit: warning: the platform listens on {args.host}, not only on this "
              "machine: anyone who can reach it can sign in as any of its users and read "
              "its developer keys. It is a development tool; keep it on 127.0.0.1 unless "
              "you must.", file=sys.stderr, flush=True)
    config["ALLOWED_HOSTS"] = tuple(hosts)
    try:
        config["FAULTS"] = dict(_fault(spec) for spec in args.fault or ())
    except ValueError as exc:
        print(f"ltikit: --fault: {exc}", file=sys.stderr)
        return 2
    app = create_app(data, **config)
    shown = "localhost" if args.host in ("127.0.0.1", "localhost") else args.host
    print(f"ltikit platform on http://{shown}:{args.port}/ (data: {data})", flush=True)
    run_simple(args.host, args.port, app, threaded=True)
    return 0


def _fault(spec: str) -> tuple[str, dict[str, object]]:
    """``token:status=429,retry_after=5``, ``api:delay=40``, ``token:hang`` ->
    (endpoint, fault)."""
    endpoint, _, options = spec.partition(":")
    fault: dict[str, object] = {}
    for option in filter(None, options.split(",")):
        name, _, value = option.partition("=")
        if name == "hang" and not value:
            fault["hang"] = True
        elif name in ("status", "retry_after", "times") and value.isdigit():
            fault[name] = int(value)
        elif name == "delay":
            fault[name] = float(value)
        else:
            raise ValueError(f"cannot read {option!r} in {spec!r} (status=N, retry_after=N, "
                             "delay=SECONDS, times=N, hang)")
    if endpoint not in ("token", "api", "services") or not fault:
        raise ValueError(f"{spec!r}: ENDPOINT:OPTIONS, ENDPOINT one of token, api, services")
    return endpoint, fault


def _platform_add_tool(args: argparse.Namespace) -> int:
    from ..platform import create_app
    from ..platform.lti11 import ConfigError
    from ..platform.web import register_tool_from_xml

    store = create_app(Path(args.data)).extensions["ltikit_platform"]
    try:
        if args.config_url:
            tool_id = register_tool_from_xml(store, consumer_key=args.key,
                                             shared_secret=args.secret,
                                             config_url=args.config_url)
        else:
            name = args.name or "LTI tool"
            tool_id = store.add_tool(
                name=name, consumer_key=args.key, shared_secret=args.secret, url=args.url,
                placements={p: {"enabled": "true", "text": name} for p in args.placement})
    except ConfigError as exc:
        print(f"ltikit: {exc}", file=sys.stderr)
        return 1
    tool = store.tool(tool_id)
    print(f"installed tool {tool_id}: {tool['name']} "
          f"({', '.join(tool['placements']) or 'no placements'})")
    return 0


def _platform_add_lti13_tool(args: argparse.Namespace) -> int:
    import json

    from ..platform import create_app
    from ..platform.lti11 import ConfigError
    from ..platform.lti13 import tool_from_canvas_json
    from ..platform.web import fetch_config

    store = create_app(Path(args.data)).extensions["ltikit_platform"]
    try:
        config = json.loads(fetch_config(args.config_url, accept="application/json"))
        tool_id, client_id, deployment_id = store.add_lti13_tool(
            **tool_from_canvas_json(config, name=args.name))
    except (ConfigError, ValueError) as exc:
        print(f"ltikit: {exc}", file=sys.stderr)
        return 1
    base = args.platform_url.rstrip("/")
    issuer = args.issuer or base
    tool = store.tool(tool_id)
    print(f"installed LTI 1.3 tool {tool_id}: {tool['name']} "
          f"({', '.join(tool['placements']) or 'no placements'})\n"
          f"client id: {client_id}\ndeployment id: {deployment_id}\n"
          "register the platform with the tool:\n"
          f"  ltikit --database-url <the tool's database> registrations add --issuer {issuer} "
          f"--client-id {client_id} --auth-login-url {base}/api/lti/authorize_redirect "
          f"--token-url {base}/login/oauth2/token --jwks-url {base}/api/lti/security/jwks "
          f"--deployment {deployment_id} --platform-storage")
    return 0


def _platform_add_key(args: argparse.Namespace) -> int:
    from ..platform import create_app

    store = create_app(Path(args.data)).extensions["ltikit_platform"]
    key_id, secret = store.add_developer_key(args.name, args.redirect_uri,
                                             scopes=args.scope or (),
                                             require_scopes=bool(args.scope))
    print(f"client id: {key_id}\nclient secret: {secret}")
    return 0


def _registrations(args: argparse.Namespace) -> Registrations:
    from ..lti13 import Registrations
    from ..storage.sql import upgrade

    storage = _storage(args)
    upgrade(storage.engine)
    return Registrations(storage.engine)


def _registrations_add(args: argparse.Namespace) -> int:
    import json

    from ..lti13.registrations import ALLOW_LIST, RECORD_NEW, canvas_preset

    registrations = _registrations(args)
    if args.registrations_command == "add-canvas":
        values = canvas_preset(args.client_id, args.canvas_domain,
                               environment=args.environment)
    else:
        public_jwk = None
        if args.public_jwk:
            with open(args.public_jwk, encoding="utf-8") as file:
                public_jwk = json.load(file)
        values = {"name": args.name or args.issuer, "issuer": args.issuer,
                  "client_id": args.client_id, "auth_login_url": args.auth_login_url,
                  "token_url": args.token_url, "jwks_url": args.jwks_url,
                  "public_jwk": public_jwk,
                  "deployment_policy": RECORD_NEW if args.accept_new_deployments
                  else ALLOW_LIST, "platform_storage": args.platform_storage}
    values["service_origins"] = tuple(args.service_origin or ())
    try:
        platform_id = registrations.add(**values, deployments=tuple(args.deployment or ()))
    except ValueError as exc:
        print(f"ltikit: {exc}", file=sys.stderr)
        return 1
    print(f"registered platform {platform_id}: {values['issuer']} client {values['client_id']}"
          f" (deployments: {values['deployment_policy'].replace('_', ' ')})")
    return 0


def _registrations_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from ..storage import tables

    registrations = _registrations(args)
    t = tables.platforms
    with registrations.engine.connect() as conn:
        for row in conn.execute(select(t).order_by(t.c.id)).mappings():
            print(f"{row['id']}\t{row['issuer']}\t{row['client_id']}\t{row['name']}")
    return 0


def _registration_link(args: argparse.Namespace) -> int:
    from ..lti13.dynamic_registration import RegistrationLinks, registration_url
    from ..storage.sql import upgrade
    from ..urls import origin

    tool_url = args.tool_url.strip()
    if origin(tool_url) is None or "?" in tool_url or "#" in tool_url:
        print("ltikit: --tool-url is the tool's public URL, like https://tool.example.edu "
              "(the link is that, then --path, then the secret)", file=sys.stderr)
        return 2
    if args.days <= 0:
        print("ltikit: --days must be positive", file=sys.stderr)
        return 2
    storage = _storage(args)
    upgrade(storage.engine)
    secret = RegistrationLinks(storage.engine).create(lifetime=args.days * 86400,
                                                      note=args.note)
    print(registration_url(tool_url, args.path, secret))
    print(f"(single use, valid {args.days:g} days; paste it into the platform: Canvas: "
          "Developer Keys > + Developer Key > + LTI Registration; Moodle: Manage tools > "
          "Tool URL > Add LTI Advantage)", file=sys.stderr)
    return 0


def _tool_keys(args: argparse.Namespace) -> int:
    import json

    from ..crypto import SecretBox
    from ..lti13.tool_keys import ToolKeys
    from ..storage.sql import upgrade

    keys = os.environ.get("LTIKIT_ENCRYPTION_KEYS")
    if not keys:
        sys.exit("ltikit: set LTIKIT_ENCRYPTION_KEYS (private keys are stored encrypted; "
                 "`ltikit keys generate` makes one)")
    storage = _storage(args)
    upgrade(storage.engine)
    tool_keys = ToolKeys(storage.engine, SecretBox(keys))
    if args.tool_keys_command == "generate":
        print(f"new signing key: {tool_keys.generate()}")
    elif args.tool_keys_command == "rotate":
        kid = tool_keys.rotate(int(args.overlap_days * 86400))
        print(f"new signing key: {kid}; earlier keys stay published for "
              f"{args.overlap_days:g} days")
    else:
        print(json.dumps(tool_keys.jwks(), indent=2))
    return 0


def _new(args: argparse.Namespace) -> int:
    from ..template import create_project

    try:
        target = create_project(args.name, title=args.title, requirement=args.ltikit,
                                framework=args.framework)
    except (FileExistsError, ValueError) as exc:
        print(f"ltikit: {exc}", file=sys.stderr)
        return 1
    print(f"created {target}/. Next:\n  cd {target}\n"
          "  python3 -m venv .venv && . .venv/bin/activate\n"
          "  pip install -r requirements.txt\n"
          "  python -m pytest\n  (then see README.md: settings, database, installing it in "
          "an LMS)")
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    from ..crypto import SecretBox

    print(SecretBox.generate_key())
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    from ..canvas.tokens import CanvasTokens
    from ..crypto import SecretBox

    keys = os.environ.get("LTIKIT_ENCRYPTION_KEYS") or os.environ.get("TOKEN_ENCRYPTION_KEYS")
    if not keys:
        sys.exit("ltikit: set LTIKIT_ENCRYPTION_KEYS (new key first, then the old ones)")
    storage = _storage(args)
    changed = CanvasTokens(storage.engine, SecretBox(keys)).rotate_keys()
    print(f"re-encrypted {changed} token rows with the first key")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltikit", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="SQLAlchemy URL of ltikit's database")
    # Accepted after the subcommand too (`ltikit db upgrade --database-url ...`).
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--database-url", default=argparse.SUPPRESS,
                          help="SQLAlchemy URL of ltikit's database")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True)
    up = db.add_parser("upgrade", help="create or upgrade ltikit's tables", parents=[database])
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_db_upgrade)

    consumers = commands.add_parser("consumers", help="LTI 1.1 consumer keys").add_subparsers(
        dest="consumers_command", required=True)
    add = consumers.add_parser("add", parents=[database],
                               help="add a consumer key (secret generated if omitted)")
    add.add_argument("key")
    add.add_argument("--secret", help="use this secret instead of generating one")
    add.set_defaults(func=_consumers_add)
    consumers.add_parser("list", help="list consumer keys", parents=[database]) \
        .set_defaults(func=_consumers_list)
    remove = consumers.add_parser("remove", help="remove a consumer key", parents=[database])
    remove.add_argument("key")
    remove.set_defaults(func=_consumers_remove)

    # "registrations", not "platforms": "platform" is the LMS itself (and `ltikit platform`
    # runs the local one).  "platforms" stays as an alias for scripts written before.
    registrations = commands.add_parser("registrations", aliases=["platforms"],
                                    help="LTI 1.3 platforms registered with the tool") \
        .add_subparsers(dest="registrations_command", required=True)
    service_origin = argparse.ArgumentParser(add_help=False)
    service_origin.add_argument(
        "--service-origin", action="append", metavar="ORIGIN",
        help="another origin (https://host[:port]) the platform's AGS/NRPS URLs may be on, "
        "besides its issuer's and token URL's (repeatable)")
    canvas = registrations.add_parser("add-canvas", parents=[database, service_origin],
                                  help="register a Canvas LTI developer key "
                                  "(Instructure-hosted issuers and endpoints preset)")
    canvas.add_argument("client_id", help="the LTI key's client id")
    canvas.add_argument("canvas_domain", help="the institution's Canvas, e.g. "
                        "canvas.example.edu (service tokens come from there)")
    canvas.add_argument("--environment", default="production",
                        choices=["production", "beta", "test"])
    canvas.add_argument("--deployment", action="append", help="deployment id (repeatable); "
                        "Canvas keys accept and record new deployments")
    canvas.set_defaults(func=_registrations_add)
    generic = registrations.add_parser("add", help="register any LTI 1.3 platform",
                                   parents=[database, service_origin])
    for name in ("--issuer", "--client-id", "--auth-login-url", "--token-url"):
        generic.add_argument(name, required=True)
    generic.add_argument("--name")
    keys = generic.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-url")
    keys.add_argument("--public-jwk", help="file holding the platform's public JWK")
    generic.add_argument("--deployment", action="append", help="deployment id (repeatable)")
    generic.add_argument("--accept-new-deployments", action="store_true",
                         help="record deployments the platform creates later")
    generic.add_argument("--platform-storage", action="store_true",
                         help="the platform offers LTI client-side storage "
                         "(lti_storage_target), used when the tool's cookies are blocked")
    generic.set_defaults(func=_registrations_add)
    registrations.add_parser("list", help="list registrations", parents=[database]) \
        .set_defaults(func=_registrations_list)

    link = commands.add_parser("registration-link", parents=[database],
                               help="make a single-use LTI Dynamic Registration link")
    link.add_argument("--tool-url", required=True,
                      help="the tool's public URL, like https://tool.example.edu")
    link.add_argument("--path", default="/lti13/register",
                      help="the registration path (LTIKIT_LTI13_REGISTRATION_PATH)")
    link.add_argument("--days", type=float, default=7.0, help="valid this many days")
    link.add_argument("--note", help="a note kept with the link (which platform it is for)")
    link.set_defaults(func=_registration_link)

    tool_keys = commands.add_parser("tool-keys", help="the tool's LTI 1.3 signing keys") \
        .add_subparsers(dest="tool_keys_command", required=True)
    tool_keys.add_parser("generate", help="make a signing key", parents=[database]) \
        .set_defaults(func=_tool_keys)
    rotate = tool_keys.add_parser("rotate", parents=[database],
                                  help="make a new signing key, keep the old ones "
                                  "published for a while")
    rotate.add_argument("--overlap-days", type=float, default=7.0)
    rotate.set_defaults(func=_tool_keys)
    tool_keys.add_parser("jwks", help="print the published keys", parents=[database]) \
        .set_defaults(func=_tool_keys)

    new = commands.add_parser("new", help="create a new tool project from the template")
    new.add_argument("name", help="directory to create")
    new.add_argument("--title", help="the tool's title (default: from the name)")
    new.add_argument("--ltikit", metavar="REQUIREMENT",
                     help="how the project's requirements.txt installs ltikit (default: "
                          "from the checkout or wheel this ltikit came from)")
    new.add_argument("--framework", choices=["flask", "fastapi"], default="flask",
                     help="the web framework of the new tool (default: flask)")
    new.set_defaults(func=_new)

    key_commands = commands.add_parser("keys", help="encryption keys for tokens at rest") \
        .add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("generate", help="print a new key").set_defaults(func=_keys_generate)
    key_commands.add_parser("rotate", parents=[database],
                    help="re-encrypt stored tokens with the first key of "
                    "LTIKIT_ENCRYPTION_KEYS").set_defaults(func=_keys_rotate)

    platform = commands.add_parser(
        "platform", help="run the local LMS stand-in (Canvas-like) for development")
    platform.add_argument("--data", default=DEFAULT_PLATFORM_DATA,
                          help="its SQLite file (created and seeded on first start)")
    platform.add_argument("--host", default="127.0.0.1")
    platform.add_argument("--port", type=int, default=8000)
    platform.add_argument("--token-lifetime", type=float, default=None,
                          help="seconds an OAuth2 access token lives (default 3600; 0: never "
                               "expires)")
    platform.add_argument("--reset", action="store_true", help="start from a fresh data file")
    platform.add_argument("--issuer", default=CANVAS_CLOUD_ISSUER,
                          help="the LTI 1.3 issuer (default: Canvas Cloud's, which is not "
                          "the platform's URL, as on Canvas; '' for the platform's URL)")
    platform.add_argument("--allowed-host", action="append", metavar="NAME",
                          help="a host name the platform answers to besides localhost and "
                          "127.0.0.1 (repeatable)")
    platform.add_argument("--fault", action="append", metavar="ENDPOINT:OPTIONS",
                          help="misbehave, to test a tool: token|api|services, then "
                          "status=N,retry_after=N,delay=SECONDS,times=N or hang; e.g. "
                          "--fault token:status=429,retry_after=5 (repeatable)")
    platform.set_defaults(func=_platform_serve)
    platform_commands = platform.add_subparsers(dest="platform_command")
    add_tool = platform_commands.add_parser("add-tool", help="install an LTI 1.1 tool")
    add_tool.add_argument("--key", required=True, help="consumer key")
    add_tool.add_argument("--secret", required=True, help="shared secret")
    where = add_tool.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="launch URL")
    where.add_argument("--config-url", help="URL of the tool's XML configuration")
    add_tool.add_argument("--name", help="tool name (with --url)")
    add_tool.add_argument("--placement", action="append", default=None,
                          help="placement to enable with --url (repeatable; default "
                               "course_navigation)")
    add_tool.set_defaults(func=_platform_add_tool)
    add13 = platform_commands.add_parser(
        "add-lti13-tool", help="install an LTI 1.3 tool from its Canvas developer-key JSON")
    add13.add_argument("--config-url", required=True,
                       help="URL of the tool's LTI 1.3 JSON configuration")
    add13.add_argument("--name", help="tool name (default: the JSON's title)")
    add13.add_argument("--platform-url", default="http://localhost:8000",
                       help="where the platform runs, for the printed command")
    add13.add_argument("--issuer", default=CANVAS_CLOUD_ISSUER,
                       help="the platform's LTI 1.3 issuer (as given to `ltikit platform`)")
    add13.set_defaults(func=_platform_add_lti13_tool)
    add_key = platform_commands.add_parser("add-key", help="create a Canvas API developer key")
    add_key.add_argument("--name", required=True)
    add_key.add_argument("--redirect-uri", action="append", required=True)
    add_key.add_argument("--scope", action="append",
                         help="enforce scopes: url:GET|/api/v1/... (repeatable)")
    add_key.set_defaults(func=_platform_add_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "platforms":
        print("ltikit: 'ltikit platforms' is now 'ltikit registrations'", file=sys.stderr)
    if getattr(args, "platform_command", None) == "add-tool" and args.placement is None:
        args.placement = ["course_navigation"]
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
