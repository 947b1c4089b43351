"""``ltikit new NAME``: a new tool project from the template in ``files/``.

The template is a working tool (launch, Canvas authorization, profile page), with its own
tests, settings, migrations and README; see ``files/README.md``.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

FILES = Path(__file__).with_name("files")
_RENAMES = {"dot-env.example": ".env.example", "gitignore": ".gitignore"}
_TEXT_SUFFIXES = {".py", ".md", ".html", ".xml", ".example", ".txt", ".ini", ".mako", ""}


def title_from(name: str) -> str:
    words = re.split(r"[-_\s]+", Path(name).name.strip())
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "LTI Tool"


def ltikit_requirement() -> str:
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
            return f"ltikit[flask] @ {url}"
    source = Path(__file__).resolve().parents[3]  # run from a checkout, not installed
    if (source / "pyproject.toml").is_file() and (source / "src" / "ltikit").is_dir():
        return f"ltikit[flask] @ {source.as_uri()}"
    version = distribution.version if distribution is not None else ""
    return f"ltikit[flask]=={version}" if version else "ltikit[flask]"


def create_project(target: str | Path, *, title: str | None = None,
                   requirement: str | None = None) -> Path:
    """Copy the template to ``target`` (which must not exist or be empty).  ``requirement``:
    the line that installs ltikit in its ``requirements.txt`` (default:
    :func:`ltikit_requirement`)."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty")
    title = title or title_from(str(target))
    if not re.fullmatch(r"[\w .,:()'&-]{1,80}", title):
        raise ValueError("the title may hold letters, digits, spaces and .,:()'&- only")
    for source in sorted(FILES.rglob("*")):
        if "__pycache__" in source.parts or source.suffix == ".pyc":
            continue
        relative = source.relative_to(FILES)
        destination = target / relative.with_name(_RENAMES.get(relative.name, relative.name))
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix in _TEXT_SUFFIXES:
            text = source.read_text(encoding="utf-8").replace("__TOOL_TITLE__", title)
            if relative.as_posix() == "requirements.txt":
                text = text.replace("__LTIKIT_REQUIREMENT__",
                                    requirement or ltikit_requirement())
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(source, destination)
    return target
