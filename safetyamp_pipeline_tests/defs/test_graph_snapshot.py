"""The asset graph against a committed snapshot (issue 14.6), so a graph change is a reviewed diff.

On an intended change, regenerate and commit the snapshot:
    SAFETYAMP_UPDATE_SNAPSHOT=1 .venv/bin/pytest -q safetyamp_pipeline_tests/defs/test_graph_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")
UPDATE_ENV = "SAFETYAMP_UPDATE_SNAPSHOT"


def _key(key: dg.AssetKey) -> str:
    return key.to_user_string()


def graph_snapshot(definitions: dg.Definitions) -> dict[str, Any]:
    graph = definitions.resolve_asset_graph()
    checks: dict[str, list[dict[str, Any]]] = {}
    for check_key in graph.asset_check_keys:
        node = graph.get(check_key)
        checks.setdefault(_key(check_key.asset_key), []).append({"name": check_key.name, "blocking": bool(node.blocking)})
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=_key):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assets[_key(key)] = {
            "group": node.group_name,
            "deps": sorted(_key(k) for k in node.parent_keys),
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "partitions": str(node.partitions_def) if node.partitions_def else None,
            "backfill_policy": str(node.backfill_policy.policy_type.value) if node.backfill_policy else None,
            "pools": sorted(node.pools or []),
            "checks": sorted(checks.get(_key(key), []), key=lambda c: c["name"]),
        }
    repository = definitions.get_repository_def()
    jobs = {
        job.name: dict(sorted(job.tags.items()))
        for job in sorted(repository.get_all_jobs(), key=lambda j: j.name)
        if not job.name.startswith("__")
    }
    return {
        "assets": assets,
        "jobs": jobs,
        "schedules": sorted(s.name for s in repository.schedule_defs),
        "sensors": sorted(s.name for s in repository.sensor_defs),
    }


def _text(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_asset_graph_matches_the_committed_snapshot() -> None:
    from safetyamp_pipeline.definitions import defs

    current = _text(graph_snapshot(defs()))
    if os.environ.get(UPDATE_ENV, "").strip() in ("1", "true", "yes"):
        SNAPSHOT.write_text(current)
        print(f"wrote {SNAPSHOT}")
        return
    assert SNAPSHOT.is_file(), f"no snapshot at {SNAPSHOT}; create it with {UPDATE_ENV}=1"
    committed = SNAPSHOT.read_text()
    if current != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True), current.splitlines(keepends=True),
                fromfile="graph_snapshot.json (committed)", tofile="graph_snapshot.json (code)",
            )
        )
        raise AssertionError(
            f"The asset graph differs from the committed snapshot. If the change is intended, run\n"
            f"  {UPDATE_ENV}=1 .venv/bin/pytest -q safetyamp_pipeline_tests/defs/{Path(__file__).name}\n"
            f"and commit {SNAPSHOT.name}.\n\n{diff}"
        )


def test_snapshot_names_every_asset_check_and_job_it_guards() -> None:
    committed = json.loads(SNAPSHOT.read_text())
    # The blocking checks the safety nets rest on are part of the reviewed shape.
    assert {"name": "active_count_stable", "blocking": True} in committed["assets"]["viewpoint/employees"]["checks"]
    assert {"name": "email_count_stable", "blocking": True} in committed["assets"]["entra/users"]["checks"]
    assert {"safetyamp_sync", "safetyamp_reconcile", "safetyamp_employee_sync"} <= set(committed["jobs"])
