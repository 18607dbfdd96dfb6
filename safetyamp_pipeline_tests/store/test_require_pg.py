"""SAFETYAMP_REQUIRE_PG=1 (set by .ci/run) turns an unreachable PostgreSQL into failed store tests;
without it they are skipped with the reason. Runs the store fixtures in a child pytest against a
closed port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = '''
from safetyamp_pipeline_tests.store.conftest import pg_target, store, store_target  # noqa: F401


def test_on_postgres(pg_target):
    assert pg_target.backend == "postgresql"


def test_on_both(store):
    assert store is not None
'''


def _run_probe(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "SAFETYAMP_REQUIRE_PG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["SAFETYAMP_TEST_PG_URL"] = "postgresql://postgres@127.0.0.1:1/test"
    if require is not None:
        env["SAFETYAMP_REQUIRE_PG"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )


def test_unreachable_postgres_fails_the_store_tests_when_required(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "1")
    out = result.stdout
    assert result.returncode == 1, out
    # The SQLite half still runs; both PostgreSQL variants fail in their fixture (reported as
    # errors, which make pytest exit 1 like failures do) instead of skipping, and say why.
    assert "1 passed, 2 errors" in out, out
    assert "skipped" not in out, out
    assert "PostgreSQL not reachable at postgresql://postgres@127.0.0.1:1/test" in out, out
    assert "SAFETYAMP_REQUIRE_PG=1: PostgreSQL is required" in out, out


def test_unreachable_postgres_skips_with_the_reason_when_not_required(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, None)
    out = result.stdout
    assert result.returncode == 0, out
    assert "1 passed, 2 skipped" in out, out
    assert "PostgreSQL not reachable at postgresql://postgres@127.0.0.1:1/test" in out, out
