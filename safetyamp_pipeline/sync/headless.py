"""Run a sync job headless, in this process, on a persistent Dagster instance.

Used by ``make sync``, the benchmarks and the end-to-end tests. The job's resources come from
the environment (DESIGN §6), so the caller passes the environment to use (e.g. ``sandbox.env``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import dagster as dg

from safetyamp_pipeline.sync.calendar import current_week_key
from safetyamp_pipeline.sync.progress import ProgressUpdate, listening

SINK_ENTITIES = ("site_clusters", "sites", "user_titles", "users", "assets")
SUMMARY_COLUMNS = ("created", "updated", "deactivated", "unchanged", "rejected_before_send", "failed", "api_calls")


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily overlay ``env`` on ``os.environ``."""
    saved = dict(os.environ)
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class SyncOutcome:
    run_id: str
    success: bool
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    failure: str | None = None

    def total(self, column: str) -> int:
        return sum(int(s.get(column, 0)) for s in self.sinks.values())


def _metadata_value(value: Any) -> Any:
    return getattr(value, "value", value)


def run_job(
    env: Mapping[str, str],
    job_name: str = "safetyamp_sync",
    *,
    instance: dg.DagsterInstance | None = None,
    tags: Mapping[str, str] | None = None,
    partition_key: str | None = None,
    selection: list[dg.AssetKey] | None = None,
    progress_stream: IO[str] | None = None,
) -> SyncOutcome:
    """Execute ``job_name`` in process and collect each sink's counts from its materialization.
    The sinks' progress is a bar on ``progress_stream`` (default: stderr) when it is a terminal
    (``make sync``); otherwise the run's own log lines carry it."""
    with environment(env), progress_display(progress_stream or sys.stderr):
        from safetyamp_pipeline.definitions import defs

        definitions = defs()
        job = definitions.resolve_job_def(job_name)
        run_instance = instance or dg.DagsterInstance.get()
        result = job.execute_in_process(
            instance=run_instance,
            partition_key=partition_key or current_week_key(),
            tags=dict(tags or {}),
            raise_on_error=False,
            asset_selection=selection,
        )
    outcome = SyncOutcome(run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        path = materialization.asset_key.path
        if path[0] == "safetyamp":
            outcome.sinks[path[1]] = {k: _metadata_value(v) for k, v in materialization.metadata.items()}
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        outcome.failure = "; ".join(f"{e.step_key}: {_root_cause(e)}" for e in failures)[:2000] or "run failed"
    return outcome


@contextlib.contextmanager
def progress_display(stream: IO[str] | None) -> Iterator[None]:
    """A rich progress bar per sink on ``stream`` while the block runs, when it is a terminal."""
    if stream is None or not stream.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream)) as bar:
        tasks: dict[str, Any] = {}

        def show(update: ProgressUpdate) -> None:
            if update.label not in tasks:
                tasks[update.label] = bar.add_task(update.label, total=update.planned, rate="")
            rate = f"{update.rate_per_second:.1f}/s" if update.rate_per_second else ""
            bar.update(tasks[update.label], completed=update.done, total=update.planned, rate=rate)

        with listening(show):
            yield


def _root_cause(event: Any) -> str:
    """The innermost error message of a step failure (what the user needs to read)."""
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return event.message or ""
    chain = [error]
    while getattr(chain[-1], "cause", None) is not None:
        chain.append(chain[-1].cause)
    # A dg.Failure raised by our own code already says what to do (e.g. which secret to check)
    # and quotes its cause; anything else is best read at its innermost error.
    failure = next((e for e in chain if getattr(e, "cls_name", None) == "Failure"), None)
    if failure is not None:
        return failure.message.strip().removeprefix("dagster._core.definitions.events.Failure: ")
    return chain[-1].message.strip()


def summary_table(outcome: SyncOutcome) -> str:
    """One line per sink (``-`` for a sink that did not run) and a total line."""
    from safetyamp_pipeline.operator.tables import format_table

    headers = ("entity", "created", "updated", "deactivated", "unchanged", "rejected", "failed", "API calls", "seconds")
    columns = ("entity", *SUMMARY_COLUMNS, "seconds")
    rows: list[dict[str, Any]] = []
    for entity in SINK_ENTITIES:
        sink = outcome.sinks.get(entity)
        if sink is None:
            rows.append({"entity": entity, **{c: "-" for c in columns[1:]}})
            continue
        rows.append({"entity": entity, **{c: int(sink.get(c, 0)) for c in SUMMARY_COLUMNS},
                     "seconds": f"{float(sink.get('seconds', 0.0)):.1f}"})
    rows.append({"entity": "total", **{c: outcome.total(c) for c in SUMMARY_COLUMNS}, "seconds": ""})
    return format_table(rows, columns, headers, right=columns[1:])
