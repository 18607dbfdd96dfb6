"""core/ stays pure: no Dagster, HTTP or database imports (DESIGN §2, §3)."""

from __future__ import annotations

import ast
from pathlib import Path

import safetyamp_pipeline.core as core

FORBIDDEN = {"dagster", "requests", "sqlalchemy", "pyodbc", "psycopg2", "urllib3", "httpx", "socket"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            roots.add("__import__")
    return roots


def test_core_modules_import_no_io_or_framework_library():
    files = sorted(Path(core.__file__).parent.glob("*.py"))
    assert len(files) >= 6
    offenders = {f.name: imported_roots(f) & (FORBIDDEN | {"__import__"}) for f in files}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_core_does_not_open_files():
    for path in Path(core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                raise AssertionError(f"{path.name} calls open()")
