"""The "count fell too far" guard behind active_count_stable and email_count_stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from safetyamp_pipeline.store import StoreUnavailable, SyncStore
from safetyamp_pipeline.sync.count_guard import CountGuard, check_count

KEY = "checks/test_baseline"


@pytest.fixture
def store(tmp_path: Path) -> SyncStore:
    return SyncStore(f"sqlite:///{tmp_path / 'store.db'}")


def _baseline(store: SyncStore) -> int:
    return store.load_asset_value(KEY)[0]["active"]


def _check(store: SyncStore, count: int, *, overridden: bool = False, run_id: str = "r") -> CountGuard:
    return check_count(store, KEY, "active", count, allowed_drop=0.2, overridden=overridden, run_id=run_id)


def test_first_read_is_accepted_as_the_baseline(store: SyncStore) -> None:
    guard = _check(store, 100)
    assert guard.stable and guard.baseline is None
    assert _baseline(store) == 100


@pytest.mark.parametrize(("count", "stable"), [(80, True), (79, False), (0, False), (150, True)])
def test_a_drop_beyond_the_allowed_share_is_refused(store: SyncStore, count: int, stable: bool) -> None:
    _check(store, 100)
    guard = _check(store, count)
    assert guard.stable is stable
    assert guard.baseline == 100
    # A refused count leaves the good baseline, so the next run still compares with it.
    assert _baseline(store) == (count if stable else 100)


def test_a_refused_drop_keeps_being_refused_until_overridden(store: SyncStore) -> None:
    _check(store, 100)
    assert not _check(store, 50).stable
    assert not _check(store, 50).stable
    accepted = _check(store, 50, overridden=True)
    assert accepted.stable and accepted.overridden and accepted.baseline == 100
    assert _baseline(store) == 50
    assert _check(store, 45).stable  # compared with the accepted 50 now


def test_a_zero_baseline_accepts_any_count() -> None:
    assert CountGuard(count=0, baseline=0, allowed_drop=0.2, overridden=False).stable
    assert CountGuard(count=5, baseline=0, allowed_drop=0.2, overridden=False).stable


def test_a_store_error_other_than_no_baseline_is_raised() -> None:
    class Broken:
        def load_asset_value(self, key: str) -> list:
            raise StoreUnavailable("sync store at sqlite:///x is unreachable")

        def save_asset_value(self, *args: object, **kwargs: object) -> int:
            raise AssertionError("must not save after a failed read")

    with pytest.raises(StoreUnavailable):
        check_count(Broken(), KEY, "active", 10, allowed_drop=0.2, overridden=False, run_id="r")
