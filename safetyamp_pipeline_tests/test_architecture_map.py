"""docs/architecture.md carries a map of the modules, one line each, that matches the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "safetyamp_pipeline"
DOC = ROOT / "docs" / "architecture.md"
SECTION = "## Module map"


def modules_in_tree() -> set[str]:
    """Every module of the package (package `__init__` files are not modules of their own)."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }


def modules_in_map() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC.name} has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `(safetyamp_pipeline/[\w/]+\.py)`", section, flags=re.MULTILINE)


def test_every_module_is_on_the_map_once_and_the_map_names_no_module_that_is_gone() -> None:
    listed = modules_in_map()
    tree = modules_in_tree()
    missing = sorted(tree - set(listed))
    gone = sorted(set(listed) - tree)
    twice = sorted({m for m in listed if listed.count(m) > 1})
    problems = []
    if missing:
        problems.append("modules missing from the map:\n" + "\n".join(f"- `{m}` — ..." for m in missing))
    if gone:
        problems.append("the map names modules that do not exist:\n" + "\n".join(gone))
    if twice:
        problems.append("listed more than once:\n" + "\n".join(twice))
    assert not problems, f"docs/architecture.md '{SECTION}' does not match the tree.\n" + "\n\n".join(problems)
