"""The benchmark's own arithmetic: budget use while requests were held, and the targets file
(DESIGN §6: numeric `measured`, names starting with their scenario, timings that can fail)."""

from __future__ import annotations

import json

from benchmarks import publish, report
from benchmarks.measure import budget_use


def test_budget_use_is_one_when_each_held_request_leaves_as_its_window_allows() -> None:
    arrivals = [0.0, 0.0, 6.0, 6.0]  # limit 2 per 6 s, the second pair held until the window allowed it
    assert budget_use(arrivals, [5.99, 5.995], limit=2, window=6.0)["budget_use"] == 1.0


def test_budget_use_falls_when_the_limiter_holds_requests_longer_than_the_window() -> None:
    arrivals = [0.0, 0.0, 8.0, 8.0]  # held 2 s too long
    measured = budget_use(arrivals, [7.99, 7.995], limit=2, window=6.0)
    assert measured["budget_use"] == 0.75 and measured["held_requests"] == 2


def test_no_held_request_gives_no_budget_use_and_the_target_misses() -> None:
    assert budget_use([0.0, 1.0], [], limit=2, window=6.0)["budget_use"] is None
    checks = report.targets([_back_to_back(budget_use=None, held_requests=0)])
    use = next(c for c in checks if c["target"].startswith("back_to_back_limited: budget use"))
    assert use["ok"] is False and isinstance(use["measured"], int | float)


def _back_to_back(**overrides: object) -> dict:
    row = {
        "scenario": "back_to_back_limited", "safetyamp_requests": 145, "minimum_requests": 144, "ratio": 1.007,
        "unexpected_count": 0, "missed_count": 0, "responses_429": 0, "gap_sync_to_reconcile_seconds": 7.3,
        "window_seconds": 15.0, "budget_use": 0.98, "held_requests": 3, "limit": 60,
    }
    row.update(overrides)
    return row


def _scale(core_cpu: float, initial_wall: float) -> list[dict]:
    initial = {"scenario": "scale20k_initial", "ratio": 1.0, "safetyamp_requests": 10, "minimum_requests": 10,
               "unexpected_count": 0, "missed_count": 0, "wall_seconds": initial_wall}
    nochange = {"scenario": "scale20k_nochange", "safetyamp_requests_max": 0, "driver_lookups_max": 0,
                "wall_seconds": 9.0, "core": {"cpu_seconds": core_cpu, "peak_mb": 62.0}}
    return [initial, nochange]


def test_the_issue_targets_are_named_as_the_issue_names_them_and_timings_can_fail() -> None:
    checks = {c["target"]: c for c in report.targets([*_scale(2.31, 194.0), _back_to_back(responses_429=1)])}
    for name in ("back_to_back_limited: 0 responses 429", "scale20k: core CPU <= 1.0 s", "scale20k_initial: wall <= 60 s"):
        assert checks[name]["ok"] is False
    assert checks["scale20k: core CPU <= 1.0 s"]["measured"] == 2.31
    held = {c["target"]: c["ok"] for c in report.targets([*_scale(0.9, 55.0), _back_to_back()])}
    assert held["scale20k: core CPU <= 1.0 s"] and held["scale20k_initial: wall <= 60 s"]
    assert held["back_to_back_limited: 0 responses 429"]


def test_every_target_is_numeric_and_starts_with_its_scenario() -> None:
    results = [*_scale(0.9, 55.0), _back_to_back(gap_sync_to_reconcile_seconds=None)]
    scenarios = {r["scenario"] for r in results} | {"scale20k"}
    checks = report.targets(results)
    assert checks
    for check in checks:
        assert isinstance(check["measured"], int | float) and not isinstance(check["measured"], bool)
        assert check["target"].split(":")[0] in scenarios
    json.dumps({"targets": checks}, allow_nan=False)


def test_a_churn_that_writes_the_wrong_record_misses_even_with_the_right_count() -> None:
    churn = {"scenario": "churn1", "safetyamp_requests": 17, "minimum_requests": 17, "unexpected_count": 1, "missed_count": 1}
    checks = {c["target"]: c["ok"] for c in report.targets([churn])}
    assert checks["churn1: requests = designed changed records"] is True
    assert checks["churn1: 0 unexpected and 0 missed records"] is False


def test_the_published_record_carries_the_table_and_every_target(tmp_path) -> None:
    outcome = {
        "written_at": "2026-12-05T06:00:00+00:00", "total_seconds": 420.0, "load_average_at_end": [0.5, 0.6, 0.7],
        "machine": {"nproc": 2, "memory_gb": 23.5, "python": "3.11.7", "platform": "Linux", "load_average_at_start": [0.1, 0.2, 0.3]},
        "scenarios": [_back_to_back(safetyamp_by_method={"GET": 25}, runs={"sync": {"safetyamp_requests": 120},
                      "reconcile": {"safetyamp_requests": 25}}, rate_limit="60 per 15 s", reconcile_wait_seconds=7.1,
                      mean_gap_seconds=15.3, rate_limit_wait_seconds=22.0)],
    }
    outcome["targets"] = report.targets(outcome["scenarios"])
    path = publish.publish(outcome, "python -m benchmarks.run", tmp_path / "README.md")
    text = path.read_text(encoding="utf-8")
    assert "back_to_back_limited" in text and "python -m benchmarks.run" in text
    assert all(c["target"] in text for c in outcome["targets"])
