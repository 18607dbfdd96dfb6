"""The "count fell too far" guard behind the blocking source checks.

A count (active employees, Entra users with an e-mail) is compared with the last *accepted* one
kept in the sync store; a fall of more than ``allowed_drop`` fails the check and leaves the baseline
as it was, so the next run still compares with the good read until someone accepts the drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safetyamp_pipeline.store import MissingAssetValue


@dataclass(frozen=True)
class CountGuard:
    count: int
    baseline: int | None
    allowed_drop: float
    overridden: bool

    @property
    def stable(self) -> bool:
        return (
            not self.baseline
            or self.count >= self.baseline * (1 - self.allowed_drop)
            or self.overridden
        )


def check_count(
    store: Any, baseline_key: str, field: str, count: int, *, allowed_drop: float, overridden: bool, run_id: str
) -> CountGuard:
    """Compare ``count`` with the accepted baseline (row field ``field`` under ``baseline_key``);
    accept it as the new baseline when stable."""
    try:
        rows = store.load_asset_value(baseline_key)
        baseline = int(rows[0][field]) if rows else None
    except MissingAssetValue:  # first read (any other store error fails the step)
        baseline = None
    guard = CountGuard(count=count, baseline=baseline, allowed_drop=allowed_drop, overridden=overridden)
    if guard.stable:
        store.save_asset_value(baseline_key, [{field: count}], run_id=run_id)
    return guard
