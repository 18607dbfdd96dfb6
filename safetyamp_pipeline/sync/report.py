"""What one sink run did: `SinkOptions` in, `SinkReport` out (counts and the masked tables)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from safetyamp_pipeline.sync.masking import mask_record, mask_text

if TYPE_CHECKING:
    from safetyamp_pipeline.core.plan import PlanItem

CHANGE_TABLE_ROWS = 50


@dataclass(frozen=True)
class SinkOptions:
    run_id: str
    dry_run: bool = False
    force_full_read: bool = False
    retry_failed: bool = False
    allow_mass_deactivation: bool = False
    mirror_max_age: timedelta = timedelta(hours=24)


@dataclass
class SinkReport:
    entity: str
    planned_create: int = 0
    planned_update: int = 0
    planned_deactivate: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    rejected_before_send: int = 0
    failed: int = 0
    held_failed: int = 0
    healed: int = 0
    api_calls: int = 0
    full_read: bool = False
    drift: int = 0
    seconds: float = 0.0
    rate_limit_wait_seconds: float = 0.0
    changes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    transient_failures: int = 0
    # natural keys several SafetyAmp records share: {key, kept_id, duplicate_ids} (lowest id kept)
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        names = (
            "planned_create", "planned_update", "planned_deactivate", "created", "updated", "deactivated",
            "unchanged", "rejected_before_send", "failed", "held_failed", "healed", "api_calls", "drift",
        )
        return {name: int(getattr(self, name)) for name in names}

    def add_rejection(self, key: str, reason: str | None) -> None:
        """A record the plan refused before sending (bad source data). Kept complete: the
        sink stores them for `safetyamp-pipeline rejected`; the metadata table limits itself."""
        self.rejected_before_send += 1
        self.rejections.append({"key": key, "reason": mask_text(reason or "")})

    def add_change(self, item: PlanItem, status: str, error: str | None = None) -> None:
        if len(self.changes) < CHANGE_TABLE_ROWS:
            fields = ", ".join(item.changed_fields or []) if item.action != "create" else "(new)"
            self.changes.append(
                {"action": item.action, "key": item.key, "fields": fields, "status": status, "error": mask_text(error or "")}
            )


def masked_changes(report: SinkReport) -> list[dict]:
    return [mask_record(c) for c in report.changes]


def active_count(entity: str, current: Mapping[str, dict]) -> int:
    """What the mass-deactivation guard compares against: users with an emp_id and system access,
    or records with an active status."""
    if entity == "users":
        return sum(1 for r in current.values() if str(r.get("emp_id") or "").strip() and r.get("system_access"))
    return sum(1 for r in current.values() if r.get("status") in (1, "1", True))
