"""Ledger retention: a daily job drops the person-data bodies (before/after) of ledger entries
older than ``SAFETYAMP_LEDGER_RETENTION_DAYS`` (default 90; 0 keeps them) and keeps the entries.

Job ``safetyamp_ledger_retention`` (config ``retention_days`` overrides the variable for one run),
schedule ``safetyamp_ledger_retention_daily`` (``SAFETYAMP_RETENTION_CRON``, default 03:15;
default status like the other schedules). It touches the sync store only.
"""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from safetyamp_pipeline.clients.resources import SyncStoreResource
from safetyamp_pipeline.defs.automation import HOUR, MAX_RUNTIME_TAG
from safetyamp_pipeline.defs.resources import AUTOMATION_RUNNING
from safetyamp_pipeline.sync.settings_env import SettingsError, ledger_retention_days

RETENTION_CRON = os.environ.get("SAFETYAMP_RETENTION_CRON", "15 3 * * *")
SCHEDULE_TIMEZONE = os.environ.get("SAFETYAMP_SCHEDULE_TIMEZONE", "America/Chicago")


class LedgerRetentionConfig(dg.Config):
    retention_days: int | None = None


@dg.op(name="prune_ledger_bodies", out=dg.Out(dg.Nothing))
def prune_ledger_bodies(context: dg.OpExecutionContext, config: LedgerRetentionConfig, store: SyncStoreResource) -> None:
    try:
        days = config.retention_days if config.retention_days is not None else ledger_retention_days()
    except SettingsError as exc:
        raise dg.Failure(description=str(exc)) from None
    if days < 0:
        raise dg.Failure(description=f"retention_days must be 0 (keep) or more, got {days}")
    if days == 0:
        context.log.info("Ledger retention is off (0 days): record bodies are kept")
        pruned, cutoff = 0, None
    else:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        pruned = store.get_store().ledger_prune_bodies(cutoff)
        context.log.info("Ledger: dropped the record bodies of %d entries older than %d days", pruned, days)
    context.add_output_metadata(
        {
            "retention_days": dg.MetadataValue.int(days),
            "pruned_entries": dg.MetadataValue.int(pruned),
            "cutoff": dg.MetadataValue.text(cutoff.isoformat() if cutoff else "none (kept)"),
        }
    )


@dg.job(
    tags={MAX_RUNTIME_TAG: str(HOUR)},
    name="safetyamp_ledger_retention",
    description="Drop the before/after record bodies of ledger entries older than the retention "
    "(SAFETYAMP_LEDGER_RETENTION_DAYS, default 90); the entries stay.",
)
def safetyamp_ledger_retention() -> None:
    prune_ledger_bodies()


@dg.schedule(
    name="safetyamp_ledger_retention_daily",
    cron_schedule=RETENTION_CRON,
    execution_timezone=SCHEDULE_TIMEZONE,
    job=safetyamp_ledger_retention,
    default_status=dg.DefaultScheduleStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultScheduleStatus.STOPPED,
    description="Daily ledger retention (person-data bodies of old entries).",
)
def safetyamp_ledger_retention_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=None, tags={"safetyamp/trigger": "schedule"})
