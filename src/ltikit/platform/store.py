"""The local platform's own database: people, courses, tools, grades, keys and tokens.

It is a development stand-in, so its schema is created on first start (``create_all``)
rather than migrated; :data:`SCHEMA_VERSION` is checked at start and a data file from an
older ltikit asks to be reset instead of failing in odd ways.  Ids are 64-bit integers
of Canvas's size (``10000000000042``), so tools meet ids that overflow 32-bit columns.
Secrets a tool sends (OAuth2 codes and tokens) are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    CursorResult,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..storage.sql import make_engine

SCHEMA_VERSION = 3
ID_BASE = 10_000_000_000_000
"""Canvas Cloud ids carry a shard number: local id 42 is seen as 10000000000042."""

metadata = MetaData()

Id = BigInteger().with_variant(Integer, "sqlite")

settings = Table(
    "settings", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
accounts = Table(
    "accounts", metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("lti_id", String(64), nullable=False),
)
users = Table(
    "users", metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("short_name", String(255), nullable=False),
    Column("sortable_name", String(255), nullable=False),
    Column("given_name", String(255), nullable=False),
    Column("family_name", String(255), nullable=False),
    Column("email", String(255), nullable=False),
    Column("login_id", String(255), nullable=False),
    Column("sis_user_id", String(255)),
    # Two ids, as in Canvas: ``lti_context_id`` is the opaque 40-hex id of LTI 1.1
    # (``user_id``, the 1.3 ``login_hint``, ``lti11_legacy_user_id``); ``lti_id`` is the
    # UUID a 1.3 launch sends as ``sub`` and AGS and NRPS call ``userId``/``user_id``.
    Column("lti_context_id", String(64), nullable=False, unique=True),
    Column("lti_id", String(64), nullable=False, unique=True),
    Column("account_admin", Boolean, nullable=False, default=False),
    Column("time_zone", String(64), nullable=False, default="America/Denver"),
    Column("locale", String(16)),
    Column("bio", Text),
    Column("title", String(255)),
)
courses = Table(
    "courses", metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("course_code", String(255), nullable=False),
    Column("sis_course_id", String(255)),
    Column("lti_id", String(64), nullable=False, unique=True),
    Column("uuid", String(64), nullable=False),
    Column("workflow_state", String(32), nullable=False, default="available"),
    Column("start_at", String(32)),
    Column("time_zone", String(64), nullable=False, default="America/Denver"),
)
sections = Table(
    # Canvas gives every course a default section; enrollments belong to one.
    "course_sections", metadata,
    Column("id", Id, primary_key=True),
    Column("course_id", Id, ForeignKey("courses.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("sis_section_id", String(255)),
)
enrollments = Table(
    "enrollments", metadata,
    Column("id", Id, primary_key=True),
    Column("course_id", Id, ForeignKey("courses.id"), nullable=False),
    Column("course_section_id", Id, ForeignKey("course_sections.id")),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    # TeacherEnrollment, TaEnrollment, DesignerEnrollment, StudentEnrollment,
    # ObserverEnrollment: Canvas's enrollment types.
    Column("type", String(32), nullable=False),
    Column("state", String(32), nullable=False, default="active"),
    UniqueConstraint("course_id", "user_id", "type"),
)
tools = Table(
    "tools", metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    Column("consumer_key", String(255), nullable=False),
    Column("shared_secret", String(255), nullable=False),
    Column("url", Text),
    Column("domain", String(255)),
    Column("privacy_level", String(32), nullable=False, default="public"),
    Column("custom_fields", Text, nullable=False, default="{}"),
    Column("placements", Text, nullable=False, default="{}"),
    Column("config_url", Text),
    Column("created_at", Float, nullable=False),
)
assignments = Table(
    "assignments", metadata,
    Column("id", Id, primary_key=True),
    Column("course_id", Id, ForeignKey("courses.id"), nullable=False),
    Column("tool_id", Id, ForeignKey("tools.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("points_possible", Float, nullable=False, default=10.0),
    Column("lti_id", String(64), nullable=False, unique=True),
    # As in Canvas, an LTI 1.3 line item is an assignment: these are its AGS fields.
    Column("resource_id", String(255)),
    Column("tag", String(255)),
    Column("resource_link_id", String(64)),
    Column("start_date_time", String(64)),
    Column("end_date_time", String(64)),
    # Set when a tool returned the assignment by deep linking: its own launch URL and
    # custom parameters.
    Column("url", Text),
    Column("custom_fields", Text),
    # Canvas's ``Lti::LineItem#coupled``: the line item was made with its assignment (in
    # the course, or by deep linking), so AGS may not delete it; line items a tool POSTs
    # are not coupled.
    Column("coupled", Boolean, nullable=False, default=True),
)
content_items = Table(
    # What tools returned by deep linking that is not an assignment: module items that
    # launch the tool (ltiResourceLink), links, files, images and HTML.
    "content_items", metadata,
    Column("id", Id, primary_key=True),
    Column("course_id", Id, ForeignKey("courses.id"), nullable=False),
    Column("tool_id", Id, ForeignKey("tools.id"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("title", String(255)),
    Column("text", Text),
    Column("url", Text),
    Column("html", Text),
    Column("custom_fields", Text),
    Column("lti_id", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)
grades = Table(
    "grades", metadata,
    Column("assignment_id", Id, ForeignKey("assignments.id"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("score", Float),  # 0.0 .. 1.0, as Basic Outcomes sends it
    Column("result_text", Text),
    Column("result_url", Text),
    Column("updated_at", Float, nullable=False),
    # AGS scores: what the tool sent, for results and the timestamp-order rule.
    Column("score_given", Float),
    Column("score_maximum", Float),
    Column("activity_progress", String(32)),
    Column("grading_progress", String(32)),
    Column("score_timestamp", Float),
)
lti13_tools = Table(
    # The LTI 1.3 side of a tool (its row in ``tools`` holds name, placements, privacy).
    "lti13_tools", metadata,
    Column("tool_id", Id, ForeignKey("tools.id"), primary_key=True),
    Column("client_id", String(32), nullable=False, unique=True),
    Column("deployment_id", String(64), nullable=False),
    Column("oidc_initiation_url", Text, nullable=False),
    Column("target_link_uri", Text, nullable=False),
    Column("redirect_uris", Text, nullable=False),  # one per line
    # How the platform checks the tool's client assertions (its key), and the LTI Advantage
    # scopes the developer key grants (space-separated).
    Column("public_jwk_url", Text),
    Column("public_jwk", Text),
    Column("scopes", Text, nullable=False, default=""),
)
registration_tokens = Table(
    # LTI Dynamic Registration: one row per registration an administrator started (the
    # token given to the tool, as a SHA-256), used once by the registration POST.
    "registration_tokens", metadata,
    Column("id", Id, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("tool_url", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
    Column("tool_id", Id),
)
service_tokens = Table(
    # LTI Advantage access tokens (client_credentials), as SHA-256 hashes.
    "lti13_service_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tool_id", Id, ForeignKey("tools.id"), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("expires_at", Float, nullable=False),
)
launch_log = Table(
    "launch_log", metadata,
    Column("id", Id, primary_key=True),
    Column("at", Float, nullable=False),
    Column("tool_id", Id, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("placement", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("params", Text, nullable=False),
)
pending_launches = Table(
    # LTI 1.3 launches waiting for the tool's auth request: as Canvas caches the launch
    # at login initiation and deletes it when the id_token is made, each lti_message_hint
    # works once and for five minutes.
    "lti13_pending_launches", metadata,
    Column("verifier", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
)
outcome_nonces = Table(
    "outcome_nonces", metadata,
    Column("consumer_key", String(255), primary_key=True),
    Column("nonce", String(255), primary_key=True),
    Column("expires_at", Float, nullable=False),
)
developer_keys = Table(
    "developer_keys", metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("secret", String(255), nullable=False),
    Column("redirect_uris", Text, nullable=False),  # one per line
    Column("scopes", Text, nullable=False, default="[]"),
    Column("require_scopes", Boolean, nullable=False, default=False),
    Column("allow_includes", Boolean, nullable=False, default=True),
    Column("workflow_state", String(32), nullable=False, default="active"),
)
oauth_codes = Table(
    "oauth_codes", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("key_id", Id, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("code_challenge", String(255)),
    Column("expires_at", Float, nullable=False),
)
access_tokens = Table(
    "access_tokens", metadata,
    Column("id", Id, primary_key=True),
    Column("key_id", Id, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), unique=True),
    Column("scopes", Text, nullable=False),
    Column("expires_at", Float),
    Column("revoked", Boolean, nullable=False, default=False),
)


def current_store() -> PlatformStore:
    """The store of the platform app handling this request (its Flask extension)."""
    from flask import current_app

    store: PlatformStore = current_app.extensions["ltikit_platform"]
    return store


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT made."""
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every table here has an integer key
        raise RuntimeError("the INSERT made no row")
    return int(key[0])


def _with_custom(row: Mapping[Any, Any]) -> dict[str, Any]:
    return dict(row, custom_fields=json.loads(row["custom_fields"] or "{}"))


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _opaque(kind: str, number: int) -> str:
    # Canvas's opaque LTI ids are 40 hex characters (a SHA-1); any stable value will do.
    return hashlib.sha1(f"ltikit-platform:{kind}:{number}".encode()).hexdigest()  # noqa: S324


PEOPLE = (
    # (local id, name, login, SIS id, role in the first course, account admin)
    (1, "Ada Admin", "admin", "SIS-ADMIN", None, True),
    (2, "Terry Teacher", "teacher", "SIS-T1", "TeacherEnrollment", False),
    (3, "Tao Assistant", "ta", "SIS-TA1", "TaEnrollment", False),
    (4, "Dana Designer", "designer", None, "DesignerEnrollment", False),
    (5, "Sam Student", "student", "SIS-S1", "StudentEnrollment", False),
    (6, "Olive Observer", "observer", None, "ObserverEnrollment", False),
)
EXTRA_STUDENTS = 11
"""More students, so the roster needs more than one page at Canvas's default of 10."""


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    login_id: str
    account_admin: bool


class PlatformStore:
    """Queries and changes the platform's pages and APIs need."""

    def __init__(self, url: str) -> None:
        self.clock: Callable[[], float] = time.time
        """What expiries are timed by: pending launches, authorization codes, access tokens
        (tests move it on instead of sleeping)."""
        self.engine: Engine = make_engine(url)
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            version = conn.execute(select(settings.c.value)
                                   .where(settings.c.name == "schema_version")).scalar()
            if version is None:
                conn.execute(insert(settings), [
                    {"name": "schema_version", "value": str(SCHEMA_VERSION)},
                    {"name": "instance_secret", "value": secrets.token_hex(32)},
                    {"name": "guid", "value": secrets.token_hex(20)},
                ])
                self._seed(conn)
            elif int(version) != SCHEMA_VERSION:
                raise RuntimeError(
                    f"The platform data file is from another ltikit version (schema {version},"
                    f" expected {SCHEMA_VERSION}); start with --reset or another --data file.")
            rows = dict(conn.execute(select(settings.c.name, settings.c.value)).all())
        self.instance_secret = bytes.fromhex(rows["instance_secret"])
        self.guid = rows["guid"]

    # -- seed -----------------------------------------------------------------------------
    def _seed(self, conn: Connection) -> None:
        account = ID_BASE + 1
        conn.execute(insert(accounts), {"id": account, "name": "Local University",
                                        "lti_id": _opaque("account", 1)})
        people = list(PEOPLE) + [
            (10 + n, f"Student {n:02d}", f"student{n:02d}", f"SIS-S{n:02d}",
             "StudentEnrollment", False) for n in range(2, 2 + EXTRA_STUDENTS)]
        for local, name, login, sis, _, admin in people:
            given, _, family = name.partition(" ")
            conn.execute(insert(users), {
                "id": ID_BASE + local, "name": name, "short_name": given,
                "sortable_name": f"{family}, {given}", "given_name": given,
                "family_name": family, "email": f"{login}@example.edu", "login_id": login,
                "sis_user_id": sis, "lti_context_id": _opaque("user", local),
                "lti_id": str(uuid.uuid4()), "account_admin": admin,
            })
        biology, chemistry = ID_BASE + 1, ID_BASE + 2
        for course_id, name, code in ((biology, "Introduction to Biology", "BIO101"),
                                      (chemistry, "Organic Chemistry", "CHEM201")):
            conn.execute(insert(courses), {
                "id": course_id, "account_id": account, "name": name, "course_code": code,
                "sis_course_id": f"{code}-2026", "lti_id": _opaque("course", course_id),
                "uuid": secrets.token_urlsafe(30), "start_at": "2026-09-01T06:00:00Z"})
            conn.execute(insert(sections), {"id": course_id, "course_id": course_id,
                                            "name": name, "sis_section_id": f"{code}-2026-01"})
        for local, _, _, _, role, _ in people:
            if role:
                conn.execute(insert(enrollments), {
                    "course_id": biology, "course_section_id": biology,
                    "user_id": ID_BASE + local, "type": role})
        # The second course: the same teacher and student, for two-course (two-tab) tests.
        conn.execute(insert(enrollments), [
            {"course_id": chemistry, "course_section_id": chemistry, "user_id": ID_BASE + 2,
             "type": "TeacherEnrollment"},
            {"course_id": chemistry, "course_section_id": chemistry, "user_id": ID_BASE + 5,
             "type": "StudentEnrollment"}])

    # -- people and courses ---------------------------------------------------------------
    def people(self) -> list[Person]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users.c.id, users.c.name, users.c.login_id,
                                       users.c.account_admin).order_by(users.c.id)).all()
        return [Person(*row) for row in rows]

    def user(self, user_id: int) -> Mapping[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return dict(row) if row else None

    def user_by_login(self, login_id: str) -> Mapping[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.login_id == login_id)) \
                .mappings().first()
        return dict(row) if row else None

    def course_user_by_lti_id(self, course_id: int, user_id: str
                              ) -> dict[str, Any] | None:
        """A member of the course named as AGS names users: the 1.3 ``lti_id`` or the
        Canvas user id (Canvas's ``GradebookServices#user``; the 1.1 id is not accepted)."""
        match = users.c.lti_id == user_id
        if user_id.isdigit():
            match = match | (users.c.id == int(user_id))
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(match, users.c.id.in_(
                select(enrollments.c.user_id).where(enrollments.c.course_id == course_id))
            )).mappings().first()
        return dict(row) if row else None

    def sections_of(self, course_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
        """The course's sections, or those in which ``user_id`` is enrolled."""
        query = select(sections).where(sections.c.course_id == course_id)
        if user_id is not None:
            query = query.where(sections.c.id.in_(select(enrollments.c.course_section_id).where(
                enrollments.c.course_id == course_id, enrollments.c.user_id == user_id)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(sections.c.id)).mappings()]

    def account(self) -> Mapping[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(accounts).order_by(accounts.c.id)).mappings().first()
        if row is None:  # pragma: no cover - the seed makes the account
            raise LookupError("the platform has no account")
        return dict(row)

    def course(self, course_id: int) -> Mapping[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(courses).where(courses.c.id == course_id)) \
                .mappings().first()
        return dict(row) if row else None

    def courses_for(self, user_id: int | None = None) -> list[Mapping[str, Any]]:
        """Every course (``None``), or the courses a user is enrolled in."""
        query = select(courses).order_by(courses.c.id)
        if user_id is not None:
            query = query.where(courses.c.id.in_(
                select(enrollments.c.course_id).where(enrollments.c.user_id == user_id)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def enrollment_types(self, course_id: int, user_id: int) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(enrollments.c.type).where(enrollments.c.course_id == course_id,
                                                 enrollments.c.user_id == user_id)
                .order_by(enrollments.c.id)).scalars())

    def course_users(self, course_id: int, *, types: Iterable[str] = (),
                     offset: int = 0, limit: int | None = None
                     ) -> tuple[int, list[dict[str, Any]]]:
        """(total, page) of the users enrolled in a course, each with their enrollments."""
        query = select(enrollments.c.user_id).where(enrollments.c.course_id == course_id)
        if types:
            query = query.where(enrollments.c.type.in_(list(types)))
        ids = select(users).where(users.c.id.in_(query)).order_by(users.c.sortable_name,
                                                                  users.c.id)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one()
            if limit is not None:
                ids = ids.offset(offset).limit(limit)
            rows = [dict(r) for r in conn.execute(ids).mappings()]
            for row in rows:
                row["enrollments"] = [dict(e) for e in conn.execute(
                    select(enrollments).where(enrollments.c.course_id == course_id,
                                              enrollments.c.user_id == row["id"])).mappings()]
        return total, rows

    # -- tools ----------------------------------------------------------------------------
    def add_tool(self, *, name: str, consumer_key: str, shared_secret: str,
                 url: str | None = None, domain: str | None = None,
                 description: str | None = None, privacy_level: str = "public",
                 custom_fields: Mapping[str, str] | None = None,
                 placements: Mapping[str, Mapping[str, Any]] | None = None,
                 config_url: str | None = None) -> int:
        with self.engine.begin() as conn:
            return _new_id(conn.execute(insert(tools).values(
                name=name, description=description, consumer_key=consumer_key,
                shared_secret=shared_secret, url=url, domain=domain,
                privacy_level=privacy_level, custom_fields=json.dumps(custom_fields or {}),
                placements=json.dumps(placements or {}), config_url=config_url,
                created_at=time.time())))

    def tool(self, tool_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tools).where(tools.c.id == tool_id)).mappings().first()
        return _tool(row) if row else None

    def tools(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_tool(r) for r in conn.execute(select(tools).order_by(tools.c.id))
                    .mappings()]

    def rename_tool(self, tool_id: int, name: str) -> None:
        """Rename a tool and its links (what an administrator edits after installing)."""
        tool = self.tool(tool_id)
        if tool is None:
            raise ValueError(f"no tool {tool_id}")
        placements = {p: dict(o, text=name) for p, o in tool["placements"].items()}
        with self.engine.begin() as conn:
            conn.execute(update(tools).where(tools.c.id == tool_id).values(
                name=name, placements=json.dumps(placements)))

    def remove_tool(self, tool_id: int) -> None:
        with self.engine.begin() as conn:
            ids = select(assignments.c.id).where(assignments.c.tool_id == tool_id)
            conn.execute(delete(grades).where(grades.c.assignment_id.in_(ids)))
            conn.execute(delete(assignments).where(assignments.c.tool_id == tool_id))
            conn.execute(delete(content_items).where(content_items.c.tool_id == tool_id))
            conn.execute(delete(service_tokens).where(service_tokens.c.tool_id == tool_id))
            conn.execute(delete(lti13_tools).where(lti13_tools.c.tool_id == tool_id))
            conn.execute(delete(tools).where(tools.c.id == tool_id))

    def add_lti13_tool(self, *, name: str, oidc_initiation_url: str, target_link_uri: str,
                       redirect_uris: Iterable[str] = (), privacy_level: str = "public",
                       custom_fields: Mapping[str, str] | None = None,
                       placements: Mapping[str, Mapping[str, Any]] | None = None,
                       public_jwk_url: str | None = None,
                       public_jwk: Mapping[str, Any] | None = None,
                       scopes: Iterable[str] = ()) -> tuple[int, str, str]:
        """(tool id, client id, deployment id) of a new LTI 1.3 tool."""
        tool_id = self.add_tool(name=name, consumer_key="", shared_secret="",
                                url=target_link_uri, privacy_level=privacy_level,
                                custom_fields=custom_fields, placements=placements)
        client_id = str(ID_BASE + 1000 + tool_id)
        deployment_id = f"{tool_id}:{_opaque('deployment', tool_id)}"
        with self.engine.begin() as conn:
            conn.execute(insert(lti13_tools).values(
                tool_id=tool_id, client_id=client_id, deployment_id=deployment_id,
                oidc_initiation_url=oidc_initiation_url, target_link_uri=target_link_uri,
                redirect_uris="\n".join(list(redirect_uris) or [target_link_uri]),
                public_jwk_url=public_jwk_url,
                public_jwk=json.dumps(public_jwk) if public_jwk else None,
                scopes=" ".join(scopes)))
        return tool_id, client_id, deployment_id

    # -- LTI Dynamic Registration ---------------------------------------------------------
    def new_registration_token(self, tool_url: str, lifetime: float = 3600.0
                               ) -> tuple[int, str]:
        """(id, token) of a registration started for the tool at ``tool_url``: Canvas's
        registration tokens last an hour."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            row_id = _new_id(conn.execute(insert(registration_tokens).values(
                token_hash=hashlib.sha256(token.encode()).hexdigest(), tool_url=tool_url,
                created_at=now, expires_at=now + lifetime)))
        return row_id, token

    def registration_token(self, token: str) -> dict[str, Any] | None:
        """The registration of an unexpired ``token`` (used or not), else None."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.engine.connect() as conn:
            row = conn.execute(select(registration_tokens).where(
                registration_tokens.c.token_hash == digest)).mappings().first()
        return dict(row) if row is not None and row["expires_at"] > time.time() else None

    def registration(self, registration_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(registration_tokens).where(
                registration_tokens.c.id == registration_id)).mappings().first()
        return dict(row) if row is not None else None

    def use_registration_token(self, registration_id: int) -> bool:
        """Claim the token for one registration (False: already used)."""
        with self.engine.begin() as conn:
            return conn.execute(update(registration_tokens).where(
                registration_tokens.c.id == registration_id,
                registration_tokens.c.used_at.is_(None)).values(used_at=time.time())
            ).rowcount == 1

    def registered(self, registration_id: int, tool_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(registration_tokens).where(
                registration_tokens.c.id == registration_id).values(tool_id=tool_id))

    def lti13_tool(self, *, tool_id: int | None = None, client_id: str | None = None
                   ) -> dict[str, Any] | None:
        query = select(lti13_tools)
        query = query.where(lti13_tools.c.tool_id == tool_id) if tool_id is not None \
            else query.where(lti13_tools.c.client_id == client_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return dict(row, redirect_uris=[u for u in row["redirect_uris"].split("\n") if u],
                    scopes=row["scopes"].split(),
                    public_jwk=json.loads(row["public_jwk"]) if row["public_jwk"] else None)

    def put_setting(self, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(update(settings).where(settings.c.name == name)
                            .values(value=value)).rowcount == 0:
                conn.execute(insert(settings).values(name=name, value=value))

    def setting(self, name: str, make: Callable[[], str]) -> str:
        """A platform-wide value, created by ``make()`` the first time."""
        with self.engine.begin() as conn:
            value = conn.execute(select(settings.c.value).where(settings.c.name == name)) \
                .scalar()
            if value is None:
                value = make()
                conn.execute(insert(settings).values(name=name, value=value))
        return str(value)

    # -- assignments and grades -----------------------------------------------------------
    def add_assignment(self, course_id: int, tool_id: int, name: str,
                       points_possible: float = 10.0, **line_item: Any) -> int:
        """A new assignment (``line_item``: its AGS fields, ``resource_id``, ``tag``,
        ``resource_link_id``, ``start_date_time``, ``end_date_time``)."""
        with self.engine.begin() as conn:
            assignment_id = _new_id(conn.execute(insert(assignments).values(
                course_id=course_id, tool_id=tool_id, name=name,
                points_possible=points_possible, lti_id="pending", **line_item)
            ))
            conn.execute(update(assignments).where(assignments.c.id == assignment_id)
                         .values(lti_id=_opaque("assignment", assignment_id)))
        return assignment_id

    def assignment(self, assignment_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(assignments).where(assignments.c.id == assignment_id)) \
                .mappings().first()
        return _with_custom(row) if row else None

    def add_content_item(self, course_id: int, tool_id: int, item_type: str, *,
                         title: str | None = None, text: str | None = None,
                         url: str | None = None, html: str | None = None,
                         custom_fields: Mapping[str, str] | None = None) -> int:
        with self.engine.begin() as conn:
            item_id = _new_id(conn.execute(insert(content_items).values(
                course_id=course_id, tool_id=tool_id, type=item_type, title=title, text=text,
                url=url, html=html, custom_fields=json.dumps(dict(custom_fields or {})),
                lti_id=secrets.token_hex(20), created_at=time.time())))
        return item_id

    def content_item(self, item_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(content_items).where(content_items.c.id == item_id)) \
                .mappings().first()
        return _with_custom(row) if row else None

    def content_items(self, course_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_with_custom(r) for r in conn.execute(
                select(content_items).where(content_items.c.course_id == course_id)
                .order_by(content_items.c.id)).mappings()]

    def update_assignment(self, assignment_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(assignments).where(assignments.c.id == assignment_id)
                         .values(values))

    def remove_assignment(self, assignment_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(grades).where(grades.c.assignment_id == assignment_id))
            conn.execute(delete(assignments).where(assignments.c.id == assignment_id))

    def grades_of(self, assignment_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                select(grades).where(grades.c.assignment_id == assignment_id)
                .order_by(grades.c.user_id)).mappings()]

    # -- LTI Advantage service tokens -----------------------------------------------------
    def issue_service_token(self, tool_id: int, scopes: Iterable[str], lifetime: float
                            ) -> str:
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(insert(service_tokens).values(
                token_hash=token_hash(token), tool_id=tool_id, scopes=" ".join(scopes),
                expires_at=self.clock() + lifetime))
        return token

    def service_token(self, token: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(service_tokens).where(
                service_tokens.c.token_hash == token_hash(token))).mappings().first()
        if row is None or row["expires_at"] < self.clock():
            return None
        return dict(row, scopes=row["scopes"].split())

    def expire_service_tokens(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(service_tokens).values(expires_at=0))

    def assignments(self, course_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_with_custom(r) for r in conn.execute(
                select(assignments).where(assignments.c.course_id == course_id)
                .order_by(assignments.c.id)).mappings()]

    def set_grade(self, assignment_id: int, user_id: int, score: float | None, *,
                  result_text: str | None = None, result_url: str | None = None,
                  **ags: Any) -> None:
        """Record a grade (``score`` 0..1); ``ags``: the AGS score fields kept with it."""
        values = {"score": score, "result_text": result_text, "result_url": result_url,
                  "updated_at": time.time(), **ags}
        with self.engine.begin() as conn:
            changed = conn.execute(update(grades).where(
                grades.c.assignment_id == assignment_id, grades.c.user_id == user_id)
                .values(values)).rowcount
            if not changed:
                conn.execute(insert(grades).values(assignment_id=assignment_id,
                                                   user_id=user_id, **values))

    def grade(self, assignment_id: int, user_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(grades).where(grades.c.assignment_id == assignment_id,
                                                    grades.c.user_id == user_id)) \
                .mappings().first()
        return dict(row) if row else None

    def delete_grade(self, assignment_id: int, user_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(grades).where(grades.c.assignment_id == assignment_id,
                                              grades.c.user_id == user_id))

    def gradebook(self, course_id: int) -> dict[tuple[int, int], dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(grades).join(
                assignments, assignments.c.id == grades.c.assignment_id)
                .where(assignments.c.course_id == course_id)).mappings()
            return {(r["assignment_id"], r["user_id"]): dict(r) for r in rows}

    # -- result sourcedids ----------------------------------------------------------------
    def sourcedid(self, tool_id: int, course_id: int, assignment_id: int, user_id: int) -> str:
        """Canvas-style ``tool-course-assignment-user-signature``: unforgeable by the tool."""
        body = f"{tool_id}-{course_id}-{assignment_id}-{user_id}"
        mac = hmac.new(self.instance_secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{body}-{mac}"

    def read_sourcedid(self, tool_id: int, sourcedid: str) -> tuple[int, int] | None:
        """(assignment id, user id) of a sourcedid this platform issued to this tool."""
        parts = sourcedid.split("-")
        if len(parts) != 5 or not all(p.isdigit() for p in parts[:4]):
            return None
        body = "-".join(parts[:4])
        mac = hmac.new(self.instance_secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(mac, parts[4]) or int(parts[0]) != tool_id:
            return None
        return int(parts[2]), int(parts[3])

    # -- LTI 1.3 launches ------------------------------------------------------------------
    def begin_lti13_launch(self, ttl: float) -> str:
        """A new launch's verifier (in its lti_message_hint), usable once within ``ttl``."""
        verifier = secrets.token_urlsafe(24)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(pending_launches).where(pending_launches.c.expires_at < now))
            conn.execute(insert(pending_launches).values(verifier=verifier,
                                                         expires_at=now + ttl))
        return verifier

    def take_lti13_launch(self, verifier: str) -> bool:
        """Whether the launch was pending and unexpired; it is consumed either way."""
        with self.engine.begin() as conn:
            return conn.execute(delete(pending_launches).where(
                pending_launches.c.verifier == verifier,
                pending_launches.c.expires_at >= self.clock())).rowcount == 1

    def claim_outcome_nonce(self, consumer_key: str, nonce: str, ttl: float) -> bool:
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(outcome_nonces).where(outcome_nonces.c.expires_at < now))
                conn.execute(insert(outcome_nonces).values(
                    consumer_key=consumer_key, nonce=nonce, expires_at=now + ttl))
        except IntegrityError:
            return False
        return True

    # -- the launch inspector -------------------------------------------------------------
    def log_launch(self, tool_id: int, user_id: int, placement: str, url: str,
                   params: Mapping[str, str], keep: int = 50) -> None:
        with self.engine.begin() as conn:
            new_id = _new_id(conn.execute(insert(launch_log).values(
                at=time.time(), tool_id=tool_id, user_id=user_id, placement=placement,
                url=url, params=json.dumps(dict(params)))))
            conn.execute(delete(launch_log).where(launch_log.c.id <= new_id - keep))

    def launches(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(launch_log).order_by(launch_log.c.id.desc())
                                .limit(limit)).mappings()
            return [dict(r, params=json.loads(r["params"])) for r in rows]

    # -- developer keys, codes and tokens -------------------------------------------------
    def add_developer_key(self, name: str, redirect_uris: Iterable[str], *,
                          scopes: Iterable[str] = (), require_scopes: bool = False,
                          secret: str | None = None) -> tuple[int, str]:
        secret = secret or secrets.token_urlsafe(48)
        with self.engine.begin() as conn:
            last = conn.execute(select(func.max(developer_keys.c.id))).scalar()
            key_id = (last or ID_BASE) + 1
            conn.execute(insert(developer_keys).values(
                id=key_id, name=name, secret=secret,
                redirect_uris="\n".join(u.strip() for u in redirect_uris if u.strip()),
                scopes=json.dumps(sorted(set(scopes))), require_scopes=require_scopes))
        return key_id, secret

    def developer_key(self, key_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(developer_keys).where(developer_keys.c.id == key_id)) \
                .mappings().first()
        return _key(row) if row else None

    def developer_keys(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(select(developer_keys)
                                                  .order_by(developer_keys.c.id)).mappings()]

    def save_code(self, code: str, *, key_id: int, user_id: int, redirect_uri: str,
                  scopes: list[str], code_challenge: str | None, ttl: float = 600) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(oauth_codes).values(
                code_hash=token_hash(code), key_id=key_id, user_id=user_id,
                redirect_uri=redirect_uri, scopes=json.dumps(scopes),
                code_challenge=code_challenge, expires_at=self.clock() + ttl))

    def take_code(self, code: str) -> dict[str, Any] | None:
        """The code's grant, once: a code is deleted when it is read."""
        with self.engine.begin() as conn:
            row = conn.execute(select(oauth_codes).where(
                oauth_codes.c.code_hash == token_hash(code))).mappings().first()
            if row is None:
                return None
            conn.execute(delete(oauth_codes).where(oauth_codes.c.code_hash == row["code_hash"]))
        if row["expires_at"] < self.clock():
            return None
        return dict(row, scopes=json.loads(row["scopes"]))

    def issue_token(self, *, key_id: int, user_id: int, scopes: list[str],
                    lifetime: float | None) -> tuple[str, str, int]:
        access, refresh = _token_string(), _token_string()
        with self.engine.begin() as conn:
            token_id = _new_id(conn.execute(insert(access_tokens).values(
                key_id=key_id, user_id=user_id, token_hash=token_hash(access),
                refresh_hash=token_hash(refresh), scopes=json.dumps(scopes),
                expires_at=self.clock() + lifetime if lifetime else None)
            ))
        return access, refresh, token_id

    def refresh_token(self, refresh: str, key_id: int, lifetime: float | None, *,
                      rotate: bool = False) -> tuple[str, str | None, dict[str, Any]] | str:
        """(new access token, new refresh token if ``rotate``, row): the token row gets a
        new access string (the old one stops working at once, as in Canvas); or an error,
        ``'not_found'`` or ``'incorrect_client'``."""
        with self.engine.begin() as conn:
            row = conn.execute(select(access_tokens).where(
                access_tokens.c.refresh_hash == token_hash(refresh),
                access_tokens.c.revoked.is_(False))).mappings().first()
            if row is None:
                return "not_found"
            if row["key_id"] != key_id:
                return "incorrect_client"
            access = _token_string()
            new_refresh = _token_string() if rotate else None
            values = {"token_hash": token_hash(access),
                      "expires_at": self.clock() + lifetime if lifetime else None}
            if new_refresh:
                values["refresh_hash"] = token_hash(new_refresh)
            conn.execute(update(access_tokens).where(access_tokens.c.id == row["id"])
                         .values(values))
        return access, new_refresh, dict(row, scopes=json.loads(row["scopes"]))

    def token(self, access: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(access_tokens).where(
                access_tokens.c.token_hash == token_hash(access))).mappings().first()
        return dict(row, scopes=json.loads(row["scopes"])) if row else None

    def revoke_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(access_tokens).values(revoked=True))

    def expire_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(access_tokens).values(expires_at=self.clock() - 1))

    def revoke_token(self, token_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(access_tokens).where(access_tokens.c.id == token_id)
                         .values(revoked=True))


def _token_string() -> str:
    # Canvas tokens look like "1~" + 64 characters; tools must treat them as opaque.
    return "1~" + secrets.token_urlsafe(48)


def _tool(row: Mapping[Any, Any]) -> dict[str, Any]:
    return dict(row, custom_fields=json.loads(row["custom_fields"]),
                placements=json.loads(row["placements"]))


def _key(row: Mapping[Any, Any]) -> dict[str, Any]:
    return dict(row, redirect_uris=[u for u in row["redirect_uris"].split("\n") if u],
                scopes=json.loads(row["scopes"]))
