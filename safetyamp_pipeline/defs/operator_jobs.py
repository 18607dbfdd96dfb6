"""Operator actions from the Dagster UI, equivalent to the CLI's ``failures retry`` / ``dismiss``.

Job ``safetyamp_failures`` with run config
``ops: {failure_queue_action: {config: {action: retry|dismiss, entity: str, keys: [str], all: bool}}}``:
``retry`` marks the named records (or, with ``all: true``, every open failure of ``entity`` or of
every entity) for re-send by the next sync; ``dismiss`` hides the named failures from the queue.
It writes only to the sync store, never to SafetyAmp. The run's output shows the queue afterwards.
"""

from typing import Literal

import dagster as dg

from safetyamp_pipeline.clients.resources import SyncStoreResource
from safetyamp_pipeline.defs.automation import HOUR, MAX_RUNTIME_TAG
from safetyamp_pipeline.operator import reports
from safetyamp_pipeline.operator.context import OperatorError
from safetyamp_pipeline.sync.failure_queue import FAILURE_QUEUE_COLUMNS, failure_queue_rows
from safetyamp_pipeline.sync.masking import mask_text
from safetyamp_pipeline.sync.metadata import metadata_table


class FailureQueueAction(dg.Config):
    action: Literal["retry", "dismiss"]
    entity: str = ""
    keys: list[str] = []
    all: bool = False


@dg.op(name="failure_queue_action", out=dg.Out(dg.Nothing))
def failure_queue_action(context: dg.OpExecutionContext, config: FailureQueueAction, store: SyncStoreResource) -> None:
    sync_store = store.get_store()
    try:
        entity = reports.parse_entity(config.entity or None)
        if config.action == "retry" and config.all:
            if config.keys:
                raise OperatorError("retry: give keys or all: true (not both)")
            messages = [reports.retry(sync_store, None, entity, everything=True)]
        elif not config.keys:
            raise OperatorError(f"{config.action}: name the records in keys" + (" (or set all: true)" if config.action == "retry" else ""))
        elif config.action == "retry":
            messages = [reports.retry(sync_store, key, entity, everything=False) for key in config.keys]
        else:
            messages = [reports.dismiss(sync_store, key, entity) for key in config.keys]
    except OperatorError as exc:
        raise dg.Failure(description=mask_text(str(exc))) from None
    for message in messages:
        context.log.info(mask_text(message))
    queue = sync_store.failures_open(entity)
    context.add_output_metadata(
        {
            "done": dg.MetadataValue.md("\n".join(f"- {mask_text(m)}" for m in messages)),
            "open_failures": dg.MetadataValue.int(len(queue)),
            "failure_queue": metadata_table(
                [{"entity": f["entity"], **row} for f, row in zip(queue, failure_queue_rows(queue), strict=True)],
                ("entity", *FAILURE_QUEUE_COLUMNS),
                limit=200,
            ),
        }
    )


@dg.job(
    tags={MAX_RUNTIME_TAG: str(HOUR)},
    name="safetyamp_failures",
    description="Retry or dismiss records of the failure queue (as `safetyamp-pipeline failures retry/dismiss`): "
    "config {action: retry|dismiss, entity, keys, all}.",
)
def safetyamp_failures() -> None:
    failure_queue_action()
