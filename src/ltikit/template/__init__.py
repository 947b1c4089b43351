"""``ltikit new NAME``: a new tool project from the template in ``files/``.

The template is a working tool (launch, Canvas authorization, profile page), with its own
tests, settings, migrations and README; see ``files/README.md``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

FILES = Path(__file__).with_name("files")
_RENAMES = {"dot-env.example": ".env.example", "gitignore": ".gitignore"}
_TEXT_SUFFIXES = {".py", ".md", ".html", ".xml", ".example", ".txt", ".ini", ".mako", ""}


def title_from(name: str) -> str:
    words = re.split(r"[-_\s]+", Path(name).name.strip())
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "LTI Tool"


def create_project(target: str | Path, *, title: str | None = None) -> Path:
    """Copy the template to ``target`` (which must not exist or be empty)."""
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
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(source, destination)
    return target
