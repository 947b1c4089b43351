"""One error module: every reason code ltikit raises is published (ltikit.errors.Reason)
and documented (docs/errors.md), and every exception is in ltikit.errors."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ltikit.errors as errors
from ltikit.errors import LTIAuthenticationError, Reason

SRC = Path(errors.__file__).parent
DOC = SRC.parent.parent / "docs" / "errors.md"


def raised_reasons() -> dict[str, str]:
    """Every reason code written in the library (not the dev platform, not the template):
    ``reason=...`` arguments (all the strings in the expression), class ``reason``
    attributes and defaults, the id_token checks' ``_refuse(message, reason)``, and
    ``Reason.X`` members used directly."""
    found: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        where = path.relative_to(SRC).as_posix()
        if where.startswith(("platform/", "template/")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            values: list[ast.AST] = []
            if isinstance(node, ast.Call):
                values += [kw.value for kw in node.keywords if kw.arg == "reason"]
                if ast.unparse(node.func).endswith("_refuse") and len(node.args) >= 2:
                    values.append(node.args[1])
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "reason" for t in targets) and \
                        node.value is not None:
                    values.append(node.value)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id == "Reason":
                found[Reason[node.attr].value] = where
            for value in values:
                for const in ast.walk(value):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        found[const.value] = where
    return found


def test_every_reason_raised_is_published_and_every_published_one_is_raised():
    raised = raised_reasons()
    assert len(raised) > 100
    unpublished = {r: where for r, where in raised.items() if r not in set(Reason)}
    assert not unpublished, f"add these to ltikit.errors.Reason: {unpublished}"
    stale = {r.value for r in Reason} - set(raised)
    assert not stale, f"Reason members nothing raises: {stale}"


def test_the_docs_list_exactly_the_published_reasons():
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", DOC.read_text(), flags=re.MULTILINE)
    assert set(documented) == {r.value for r in Reason}
    twice = {r for r in documented if documented.count(r) > 1}
    assert twice == {"bad_signature", "replayed_nonce"}  # under LTI 1.1 and LTI 1.3 both


def test_every_exception_lives_in_one_module_and_is_drawn_in_its_tree():
    exceptions = [getattr(errors, name) for name in errors.__all__
                  if isinstance(getattr(errors, name), type)
                  and issubclass(getattr(errors, name), Exception)]
    assert len(exceptions) == 19
    for cls in exceptions:
        assert cls.__module__ == "ltikit.errors"
        assert re.search(rf"\b{cls.__name__}\b", errors.__doc__), cls
    # Defined once: the old import paths give the same classes.
    from ltikit.canvas import CanvasUnavailable
    from ltikit.lti13.services import ServiceError

    assert CanvasUnavailable is errors.CanvasUnavailable and ServiceError is errors.ServiceError


def test_a_reason_is_its_string():
    refused = LTIAuthenticationError("This launch was already used.", reason="replayed_nonce")
    assert refused.reason == Reason.REPLAYED_NONCE
    assert f"{Reason.REPLAYED_NONCE}" == "replayed_nonce"
