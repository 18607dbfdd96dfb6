"""``safetyamp-pipeline rejected``: the records the last run did not send, and why.

    safetyamp-pipeline rejected [--entity E] [--format table|csv|json] [--show-pii]

Read from the sync store (each sink replaces its entity's rows at the end of a run that is not a
dry run). The reason names the field at fault; e-mail addresses inside it are masked unless
``--show-pii``. Exit 0 (also when nothing was rejected).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from safetyamp_pipeline.operator.context import EXIT_OK, open_store
from safetyamp_pipeline.operator.export import csv_export
from safetyamp_pipeline.operator.pii import Masker
from safetyamp_pipeline.operator.reports import parse_entity
from safetyamp_pipeline.operator.tables import format_table, to_json

COMMAND = "rejected"
COLUMNS = ["entity", "key", "fields", "reason", "run_id", "at"]
HEADERS = ["entity", "key", "fields", "reason", "run", "at (UTC)"]


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(COMMAND, help="records the last run did not send, and why (the field at fault)")
    parser.add_argument("--entity", help="site_clusters, sites, user_titles, users or assets (or cluster, site, title, employee, vehicle)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    common(parser)


def rejected_rows(store: Any, entity: str | None, masker: Masker) -> list[dict[str, Any]]:
    return [{**row, "reason": masker.text(row["reason"])} for row in store.rejections_last(entity)]


def render(rows: list[dict[str, Any]], fmt: str, entity: str | None) -> str:
    if fmt == "json":
        return to_json(rows)
    if fmt == "csv":
        return csv_export(rows, COLUMNS)
    if not rows:
        return "No record was held back by the last run" + (f" of {entity}" if entity else "") + "."
    count = f"{len(rows)} {'record' if len(rows) == 1 else 'records'} not sent by the last run"
    return format_table(rows, COLUMNS, HEADERS, max_cell=100) + f"\n\n{count} (`explain KIND KEY` shows one in full)"


def run(args: argparse.Namespace, masker: Masker) -> int:
    entity = parse_entity(args.entity)
    rows = rejected_rows(open_store(args.store_url), entity, masker)
    print(render(rows, args.format, entity))
    return EXIT_OK
