"""``ltikit new NAME [--framework flask|fastapi]``: a new tool project from the template.

The template in ``files/`` is a working Flask tool (launch, Canvas authorization, profile
page, roster and grades, content selection, Dynamic Registration), with its own tests,
settings, migrations and README; see ``files/README.md``.  ``--framework fastapi`` lays
``fastapi/`` over it: the same tool as a FastAPI app (``app.py``, its tests and its
requirements), with the same settings, pages, models and migrations.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

FILES = Path(__file__).with_name("files")
FASTAPI = Path(__file__).with_name("fastapi")
FRAMEWORKS = ("flask", "fastapi")
_RENAMES = {"dot-env.example": ".env.example", "gitignore": ".gitignore"}
_TEXT_SUFFIXES = {".py", ".md", ".html", ".xml", ".example", ".txt", ".ini", ".mako", ""}


def title_from(name: str) -> str:
    words = re.split(r"[-_\s]+", Path(name).name.strip())
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "LTI Tool"


def ltikit_requirement(extra: str = "flask") -> str:
    """The requirement line a new project installs ltikit with: the checkout or wheel this
    ltikit was installed from (pip records it, PEP 610 ``direct_url.json``), since ltikit is
    not on a package index yet; the released version by name when it came from an index."""
    try:
        distribution: metadata.Distribution | None = metadata.distribution("ltikit")
    except metadata.PackageNotFoundError:
        distribution = None
    if distribution is not None:
        try:
            url = json.loads(distribution.read_text("direct_url.json") or "{}").get("url")
        except ValueError:
            url = None
        if isinstance(url, str) and url.startswith("file://"):
            return f"ltikit[{extra}] @ {url}"
    source = Path(__file__).resolve().parents[3]  # run from a checkout, not installed
    if (source / "pyproject.toml").is_file() and (source / "src" / "ltikit").is_dir():
        return f"ltikit[{extra}] @ {source.as_uri()}"
    version = distribution.version if distribution is not None else ""
    return f"ltikit[{extra}]=={version}" if version else f"ltikit[{extra}]"


def create_project(target: str | Path, *, title: str | None = None,
                   requirement: str | None = None, framework: str = "flask") -> Path:
    """Copy the template to ``target`` (which must not exist or be empty).  ``requirement``:
    the line that installs ltikit in its ``requirements.txt`` (default:
    :func:`ltikit_requirement`); ``framework``: ``flask`` or ``fastapi``."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"the framework is one of {', '.join(FRAMEWORKS)}")
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty")
    title = title or title_from(str(target))
    if not re.fullmatch(r"[\w .,:()'&-]{1,80}", title):
        raise ValueError("the title may hold letters, digits, spaces and .,:()'&- only")
    sources = {p.relative_to(FILES): p for p in FILES.rglob("*")}
    if framework == "fastapi":
        sources.update({p.relative_to(FASTAPI): p for p in FASTAPI.rglob("*")})
    for relative, source in sorted(sources.items()):
        if "__pycache__" in source.parts or source.suffix == ".pyc":
            continue
        destination = target / relative.with_name(_RENAMES.get(relative.name, relative.name))
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix in _TEXT_SUFFIXES:
            text = source.read_text(encoding="utf-8").replace("__TOOL_TITLE__", title)
            if relative.as_posix() == "requirements.txt":
                text = text.replace("__LTIKIT_REQUIREMENT__",
                                    requirement or ltikit_requirement(framework))
            if framework == "fastapi" and relative.as_posix() == "README.md":
                text = _fastapi_readme(text)
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(source, destination)
    return target


def _fastapi_readme(text: str) -> str:
    """The template's README for the FastAPI app: the same tool, served by uvicorn."""
    text = text.replace("made with `ltikit new`.", "made with `ltikit new --framework "
                        "fastapi`: a FastAPI app (`app.py`) on ltikit's Starlette adapter, "
                        "with the same settings, pages and tests as the Flask template.", 1)
    text = text.replace("plain `ltikit[flask]`", "plain `ltikit[fastapi]`")
    return text.replace("a WSGI server such as\n`gunicorn 'app:create_app()'`",
                        "an ASGI server such as\n`uvicorn --factory app:create_app --workers 4`")
