from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from safetyamp_pipeline.store import AssetValueError, MissingAssetValue, SyncStore


def test_round_trip_converts_dates_and_decimals_and_keeps_everything_else(store: SyncStore) -> None:
    rows = [
        {
            "Employee": 1234,
            "FirstName": "Zoë ",
            "HireDate": datetime(2020, 3, 2),
            "Hrs": Decimal("8.50"),
            "BirthDate": date(1990, 1, 31),
            "TermDate": None,
            "Count": Decimal("40.00"),
        },
        {"Employee": 99, "FirstName": None, "tags": ["a", "b"], "nested": {"x": 1}},
    ]
    written = store.save_asset_value(
        "viewpoint/employees", rows, run_id="run-1", metadata={"source": "vista"}
    )

    assert written == 2
    assert store.load_asset_value("viewpoint/employees") == [
        {
            "Employee": 1234,
            "FirstName": "Zoë ",
            "HireDate": "2020-03-02T00:00:00",
            "Hrs": 8.5,
            "BirthDate": "1990-01-31",
            "TermDate": None,
            "Count": 40,
        },
        {"Employee": 99, "FirstName": None, "tags": ["a", "b"], "nested": {"x": 1}},
    ]
    info = store.asset_value_info("viewpoint/employees")
    assert info["run_id"] == "run-1"
    assert info["row_count"] == 2
    assert info["metadata"] == {"source": "vista"}
    assert info["written_at"].tzinfo is not None
    assert abs((datetime.now(UTC) - info["written_at"]).total_seconds()) < 60


def test_save_replaces_the_whole_previous_value(store: SyncStore) -> None:
    store.save_asset_value("a", [{"i": i} for i in range(12_000)], run_id="r1")
    store.save_asset_value("a", [{"i": -1}], run_id="r2")

    assert store.load_asset_value("a") == [{"i": -1}]
    assert store.asset_value_info("a")["run_id"] == "r2"


def test_empty_value_is_a_value_and_missing_one_raises_naming_it(store: SyncStore) -> None:
    store.save_asset_value("empty", [])
    assert store.load_asset_value("empty") == []
    assert store.asset_value_info("never") is None
    with pytest.raises(MissingAssetValue, match="'never'"):
        store.load_asset_value("never")
    with pytest.raises(MissingAssetValue, match="2024-01-07"):
        store.load_asset_value("empty", partition="2024-01-07")


def test_partitions_are_separate_values_loaded_in_the_order_asked(store: SyncStore) -> None:
    for week in ("2024-01-14", "2024-01-07", "2024-01-21"):
        store.save_asset_value("job_assignments", [{"week": week, "n": n} for n in range(3)], partition=week)
    store.save_asset_value("job_assignments", [{"week": "none"}])  # unpartitioned value: not a partition

    assert store.asset_partitions("job_assignments") == ["2024-01-07", "2024-01-14", "2024-01-21"]
    assert store.load_asset_value("job_assignments", partition="2024-01-14") == [
        {"week": "2024-01-14", "n": n} for n in range(3)
    ]
    rows = store.load_asset_partitions("job_assignments", ["2024-01-21", "2024-01-07"])
    assert [r["week"] for r in rows] == ["2024-01-21"] * 3 + ["2024-01-07"] * 3
    assert store.load_asset_value("job_assignments") == [{"week": "none"}]

    with pytest.raises(MissingAssetValue) as exc:
        store.load_asset_partitions("job_assignments", ["2024-01-07", "2023-12-31", "2023-12-24"])
    assert exc.value.partitions == ["2023-12-31", "2023-12-24"]
    assert "2023-12-31" in str(exc.value) and "2024-01-07" not in str(exc.value)


def test_unserializable_row_is_named_and_previous_value_stays(store: SyncStore) -> None:
    store.save_asset_value("a", [{"ok": 1}])
    bad = [{"i": i} for i in range(7000)] + [{"i": 7000, "blob": object()}]

    with pytest.raises(AssetValueError, match=r"row 7000: field 'blob'"):
        store.save_asset_value("a", bad)
    with pytest.raises(AssetValueError, match="row 1: not a mapping"):
        store.save_asset_value("a", [{"i": 0}, ["not", "a", "dict"]])

    assert store.load_asset_value("a") == [{"ok": 1}]


def test_exception_in_the_middle_of_a_write_leaves_previous_value_intact(store: SyncStore) -> None:
    store.save_asset_value("a", [{"v": "old", "i": i} for i in range(6000)], run_id="old-run")

    def rows_then_failure():
        for i in range(11_000):  # two full chunks are inserted before the failure
            yield {"v": "new", "i": i}
        raise RuntimeError("source connection lost")

    with pytest.raises(RuntimeError, match="source connection lost"):
        store.save_asset_value("a", rows_then_failure(), run_id="new-run")

    rows = store.load_asset_value("a")
    assert len(rows) == 6000 and {r["v"] for r in rows} == {"old"}
    assert store.asset_value_info("a")["run_id"] == "old-run"
    # and the store still takes writes
    store.save_asset_value("a", [{"v": "newer"}])
    assert store.load_asset_value("a") == [{"v": "newer"}]


def test_large_value_round_trips(store: SyncStore) -> None:
    rows = [
        {
            "PRCo": 1,
            "Employee": 100_000 + i % 1500,
            "JCCo": 1,
            "Job": f"{i % 900:05d}.",
            "PREndDate": "2024-01-07T00:00:00",
            "Hrs": 8.0,
        }
        for i in range(200_000)
    ]
    assert store.save_asset_value("bprjc", rows) == 200_000
    loaded = store.load_asset_value("bprjc")
    assert len(loaded) == 200_000
    assert loaded[0] == rows[0] and loaded[-1] == rows[-1] and loaded[123_457] == rows[123_457]


def test_partition_must_be_a_non_empty_string(store: SyncStore) -> None:
    with pytest.raises(ValueError, match="partition"):
        store.save_asset_value("a", [], partition="")


# -- run-scoped values (issue 16.1) -------------------------------------------------------------


def test_a_pending_value_is_never_loaded_until_accepted(store: SyncStore) -> None:
    store.save_asset_value("entra/users", [{"mail": "good"}], run_id="run-1")
    store.save_asset_value("entra/users", [{"mail": None}], run_id="run-2", accept=False)

    assert store.load_asset_value("entra/users") == [{"mail": "good"}]
    assert store.load_asset_value("entra/users", run_id="run-2") == [{"mail": "good"}]
    assert store.asset_value_state("entra/users", "run-2") == "pending"
    assert store.asset_value_info("entra/users")["run_id"] == "run-1"

    assert store.accept_asset_value("entra/users", "run-2") == 1
    assert store.load_asset_value("entra/users") == [{"mail": None}]
    assert store.asset_value_state("entra/users", "run-2") == "accepted"
    assert store.asset_value_info("entra/users")["run_id"] == "run-2"


def test_a_pending_value_alone_is_no_value(store: SyncStore) -> None:
    store.save_asset_value("viewpoint/employees", [{"Employee": 1}], run_id="run-1", accept=False)
    with pytest.raises(MissingAssetValue):
        store.load_asset_value("viewpoint/employees", run_id="run-1")
    with pytest.raises(ValueError, match="run id"):
        store.save_asset_value("viewpoint/employees", [], accept=False)
    with pytest.raises(MissingAssetValue):
        store.accept_asset_value("viewpoint/employees", "never-ran")


def test_a_run_reads_its_own_accepted_value_even_after_another_run_accepted_one(store: SyncStore) -> None:
    store.save_asset_value("viewpoint/employees", [{"Employee": 1}], run_id="hourly")
    store.save_asset_value("viewpoint/employees", [{"Employee": 2}], run_id="employee-sync")

    assert store.load_asset_value("viewpoint/employees", run_id="hourly") == [{"Employee": 1}]
    assert store.load_asset_value("viewpoint/employees", run_id="employee-sync") == [{"Employee": 2}]
    # A run in which the source did not run (a manual desired/*) reads the last accepted value.
    assert store.load_asset_value("viewpoint/employees", run_id="manual") == [{"Employee": 2}]
    assert store.load_asset_value("viewpoint/employees") == [{"Employee": 2}]


def test_partitions_prefer_the_runs_own_value_per_partition(store: SyncStore) -> None:
    store.save_asset_value("viewpoint/job_assignments", [{"w": "a-old"}], partition="2026-01-05", run_id="r1")
    store.save_asset_value("viewpoint/job_assignments", [{"w": "b-old"}], partition="2026-01-12", run_id="r1")
    store.save_asset_value("viewpoint/job_assignments", [{"w": "b-new"}], partition="2026-01-12", run_id="r2")

    assert store.load_asset_partitions("viewpoint/job_assignments", ["2026-01-05", "2026-01-12"], run_id="r1") == [
        {"w": "a-old"}, {"w": "b-old"},
    ]
    assert store.load_asset_partitions("viewpoint/job_assignments", ["2026-01-05", "2026-01-12"], run_id="r2") == [
        {"w": "a-old"}, {"w": "b-new"},
    ]


def test_old_run_values_are_pruned_with_their_chunks(store: SyncStore) -> None:
    from sqlalchemy import func, select

    from safetyamp_pipeline.store.asset_values import RUN_VALUES_KEPT

    runs = [f"run-{i:02d}" for i in range(RUN_VALUES_KEPT + 5)]
    for i, run in enumerate(runs):
        store.save_asset_value("samsara/vehicles", [{"n": i}], run_id=run)
    store.save_asset_value("samsara/vehicles", [{"n": "refused"}], run_id="late", accept=False)

    chunks = store._t.asset_chunks
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(chunks)).scalar()
    assert stored == RUN_VALUES_KEPT
    assert store.load_asset_value("samsara/vehicles") == [{"n": len(runs) - 1}]
    # A pruned run falls back to the last accepted value; a kept one still reads its own.
    assert store.load_asset_value("samsara/vehicles", run_id=runs[0]) == [{"n": len(runs) - 1}]
    assert store.load_asset_value("samsara/vehicles", run_id=runs[-2]) == [{"n": len(runs) - 2}]
