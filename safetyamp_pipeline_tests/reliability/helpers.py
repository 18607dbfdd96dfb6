"""Shared helpers of the reliability tests: small sandboxes, natural-key checks, state comparison
and the sync run in a child process (so that it can be killed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetyamp_pipeline_tests.e2e.conftest import SandboxRun, start_run

REPO = Path(__file__).resolve().parents[2]
ENTITIES = ("site_clusters", "sites", "user_titles", "users", "assets")
# What makes a record unique for the pipeline. SafetyAmp itself only enforces some of these
# (an asset's serial is NOT unique server-side), so duplicates are checked here.
NATURAL_KEYS = {
    "users": "emp_id",
    "sites": "ext_id",
    "site_clusters": "external_code",
    "assets": "serial",
    "user_titles": "name",
}
_REFERENCE_FIELDS = {
    "home_site_id": "sites",
    "site_id": "sites",
    "cluster_id": "site_clusters",
    "parent_cluster_id": "site_clusters",
    "current_user_id": "users",
    "current_title_id": "user_titles",
}
_VOLATILE = {"id", "path", "site", "created_at", "created_by", "updated_at", "updated_by", "deleted_at",
             "deleted_by", "last_logged_in"}


def start(tmp: Path, employees: int = 90, seed: int = 5, vehicles: int | None = 24, **sandbox_kwargs: Any) -> SandboxRun:
    """A seeded sandbox (real emulators over HTTP), its store and a Dagster instance under ``tmp``."""
    (tmp / "dagster_home").mkdir(parents=True, exist_ok=True)
    (tmp / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    _, run = start_run(tmp, employees, seed, vehicles=vehicles, **sandbox_kwargs)
    return run


def stop(run: SandboxRun) -> None:
    run.instance.dispose()
    run.sandbox.stop()


def duplicates(state: Mapping[str, list[dict]]) -> dict[str, list[str]]:
    """Natural keys held by more than one SafetyAmp record, per entity."""
    found: dict[str, list[str]] = {}
    for entity, field in NATURAL_KEYS.items():
        keys = Counter(_key_text(r.get(field)) for r in state.get(entity, []))
        dup = sorted(k for k, n in keys.items() if n > 1 and k)
        if dup:
            found[entity] = dup
    return found


def _key_text(value: Any) -> str:
    return str(value).strip().casefold() if value not in (None, "") else ""


def comparable(state: Mapping[str, list[dict]]) -> dict[str, dict[str, dict]]:
    """SafetyAmp state keyed by natural key, with server ids replaced by the natural keys they
    point at and server bookkeeping dropped: two sandboxes synced from the same data compare equal."""
    id_to_key: dict[str, dict[Any, str]] = {
        entity: {r["id"]: _key_text(r.get(field)) or f"name:{r.get('name')}" for r in state.get(entity, [])}
        for entity, field in NATURAL_KEYS.items()
    }
    result: dict[str, dict[str, dict]] = {}
    for entity, field in NATURAL_KEYS.items():
        records: dict[str, dict] = {}
        for record in state.get(entity, []):
            key = _key_text(record.get(field)) or f"name:{record.get('name')}"
            clean: dict[str, Any] = {}
            for name, value in record.items():
                if name in _VOLATILE:
                    continue
                if name in _REFERENCE_FIELDS:
                    value = id_to_key[_REFERENCE_FIELDS[name]].get(value, value)
                elif isinstance(value, dict):
                    value = next((value[f] for f in (*NATURAL_KEYS.values(), "name") if value.get(f) not in (None, "")), None)
                elif isinstance(value, list):
                    value = sorted(str(v.get("name", v.get("id")) if isinstance(v, dict) else v) for v in value)
                clean[name] = value
            records[key] = clean
        result[entity] = records
    return result


def state_differences(actual: Mapping[str, list[dict]], expected: Mapping[str, list[dict]]) -> list[str]:
    """Human-readable differences between two SafetyAmp states (empty when equal)."""
    a, e = comparable(actual), comparable(expected)
    problems: list[str] = []
    for entity in NATURAL_KEYS:
        missing = sorted(set(e[entity]) - set(a[entity]))
        extra = sorted(set(a[entity]) - set(e[entity]))
        if missing:
            problems.append(f"{entity}: missing {missing[:5]} ({len(missing)})")
        if extra:
            problems.append(f"{entity}: unexpected {extra[:5]} ({len(extra)})")
        for key in sorted(set(a[entity]) & set(e[entity])):
            if a[entity][key] != e[entity][key]:
                fields = sorted(k for k in set(a[entity][key]) | set(e[entity][key]) if a[entity][key].get(k) != e[entity][key].get(k))
                problems.append(f"{entity} {key}: fields differ {fields}")
    return problems


def _index(state: Mapping[str, list[dict]], entity: str) -> dict[str, dict]:
    field = NATURAL_KEYS[entity]
    return {_key_text(r.get(field)): r for r in state.get(entity, []) if r.get(field) not in (None, "")}


def unrecorded_writes(store: Any, before: Mapping[str, list[dict]], after: Mapping[str, list[dict]]) -> tuple[int, list[tuple[str, str]]]:
    """Records created or changed in SafetyAmp between two states, and those among them without a
    successful ledger entry. Also asserts that no create is in the ledger twice."""
    ok = store.ledger_query(status="ok")
    creates = [(e["entity"], e["key"]) for e in ok if e["action"] == "create"]
    assert len(creates) == len(set(creates)), "a create is in the ledger twice"
    recorded = {(e["entity"], _key_text(e["key"])) for e in ok}
    volatile = {"updated_at", "updated_by", "site", "current_user", "current_title"}
    written, missing = 0, []
    for entity in ENTITIES:
        old, new = _index(before, entity), _index(after, entity)
        for key, record in new.items():
            stable_new = {k: v for k, v in record.items() if k not in volatile}
            if key in old and stable_new == {k: v for k, v in old[key].items() if k not in volatile}:
                continue
            written += 1
            if (entity, key) not in recorded:
                missing.append((entity, key))
    return written, missing


def record_count(state: Mapping[str, list[dict]]) -> int:
    return sum(len(state.get(entity, [])) for entity in NATURAL_KEYS)


# -- the sync in a child process ------------------------------------------------------------------

CHILD_CODE = (
    "import json, sys\n"
    "from safetyamp_pipeline.sync.headless import run_job\n"
    "env = json.loads(sys.argv[1])\n"
    "outcome = run_job(env, sys.argv[2], tags=json.loads(sys.argv[3]))\n"
    "print('OUTCOME ' + json.dumps({'run_id': outcome.run_id, 'success': outcome.success, "
    "'failure': outcome.failure, 'sinks': {k: {c: v for c, v in s.items() if isinstance(v, (int, float, bool))} "
    "for k, s in outcome.sinks.items()}}))\n"
)


def spawn_sync(env: Mapping[str, str], job: str = "safetyamp_sync", tags: Mapping[str, str] | None = None,
               log_path: Path | None = None) -> subprocess.Popen:
    """``run_job`` in a child Python process (the emulators stay in this process)."""
    child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed by the OS at exit
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_CODE, json.dumps(dict(env)), job, json.dumps(dict(tags or {}))],
        cwd=REPO, env=child_env, stdout=out, stderr=subprocess.STDOUT,
    )


def child_outcome(log_path: Path) -> dict[str, Any] | None:
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("OUTCOME "):
            return json.loads(line.removeprefix("OUTCOME "))
    return None


def kill_when_requests_reach(process: subprocess.Popen, run: SandboxRun, threshold: int, timeout: float = 120.0) -> int:
    """SIGKILL ``process`` as soon as SafetyAmp has counted ``threshold`` requests (polled); returns
    the count seen at the kill, or -1 when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return -1
        total = run.sandbox.safetyamp.request_counts()["total"]
        if total >= threshold:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            return total
        time.sleep(0.002)
    process.kill()
    process.wait(30)
    raise AssertionError(f"the sync never reached {threshold} SafetyAmp requests within {timeout} s")


def report(name: str, data: Any) -> None:
    """Append a scenario's numbers to the file named by RELIABILITY_REPORT (docs/reliability.md
    quotes them); nothing happens when it is not set."""
    path = os.environ.get("RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"scenario": name, **(data if isinstance(data, dict) else {"result": data})}, default=str) + "\n")
