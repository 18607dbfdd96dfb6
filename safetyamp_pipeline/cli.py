"""``safetyamp-pipeline``: the operator's command line over the sync store.

    safetyamp-pipeline explain employee|site|cluster|title|vehicle KEY [--show-pii]
    safetyamp-pipeline failures [--entity E] [--reason R]
    safetyamp-pipeline failures retry KEY|--all [--entity E]
    safetyamp-pipeline failures dismiss KEY [--entity E]
    safetyamp-pipeline ledger [--since T] [--entity E] [--run RUN_ID] [--key K] [--status S] [--limit N]
                              [--format table|csv|json]

The store is the one the assets use (``SAFETYAMP_STORE_URL``, else SQLite under ``DAGSTER_HOME``);
``--store-url`` overrides it. Exit codes: 0 ok, 1 not found / nothing matched, 2 usage or
configuration error. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from safetyamp_pipeline.operator import reports
from safetyamp_pipeline.operator.context import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    OperatorError,
    open_store,
    settings_from_env,
)
from safetyamp_pipeline.operator.lookup import KINDS
from safetyamp_pipeline.operator.pii import Masker, mask_free_text
from safetyamp_pipeline.store import LEDGER_STATUSES, mask_url

PROG = "safetyamp-pipeline"
DEFAULT_LEDGER_LIMIT = 100


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (exit 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise OperatorError(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store-url", help="sync store SQLAlchemy URL (default: SAFETYAMP_STORE_URL, else SQLite under DAGSTER_HOME)")
    parser.add_argument("--show-pii", action="store_true", help="show e-mails, phones, birth dates and streets unmasked")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Operate the SafetyAmp sync: explain a record, work the failed queue, read the ledger.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    explain = commands.add_parser("explain", help="one record end to end: sources, desired (with rules), SafetyAmp, pending plan, failure, ledger")
    explain.add_argument("kind", choices=sorted(KINDS), help="what KEY names")
    explain.add_argument("key", help="employee number, job number, cluster code or name, title name, vehicle serial/Samsara id/plate")
    explain.add_argument("--history", type=int, default=20, metavar="N", help="ledger entries shown (default 20)")
    _common(explain)

    failures = commands.add_parser("failures", help="open failures; `failures retry KEY|--all`, `failures dismiss KEY`")
    failures.add_argument("action", nargs="?", choices=["list", "retry", "dismiss"], default="list", help="default: list")
    failures.add_argument("key", nargs="?", help="natural key of the record (retry, dismiss)")
    failures.add_argument("--entity", help="site_clusters, sites, user_titles, users or assets (or cluster, site, title, employee, vehicle)")
    failures.add_argument("--reason", help="list: only failures with exactly this reason")
    failures.add_argument("--all", action="store_true", help="retry: every open failure (of --entity, if given)")
    failures.add_argument("--format", choices=["table", "csv", "json"], default="table", help="list: output format")
    _common(failures)

    ledger = commands.add_parser("ledger", help="what was written to SafetyAmp (latest first)")
    ledger.add_argument("--since", help="24h, 7d, 30m, 2w, an ISO date or date-time (UTC when naive)")
    ledger.add_argument("--entity")
    ledger.add_argument("--run", dest="run_id", metavar="RUN_ID", help="Dagster run id")
    ledger.add_argument("--key", help="natural key of a record")
    ledger.add_argument("--status", choices=sorted(LEDGER_STATUSES))
    ledger.add_argument("--limit", type=int, default=DEFAULT_LEDGER_LIMIT, metavar="N",
                        help=f"at most N entries (default {DEFAULT_LEDGER_LIMIT}; 0 = all)")
    ledger.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _common(ledger)
    for module in _plugin_modules():
        module.add_parser(commands, _common)
    return parser


def _plugin_modules() -> list:
    """Subcommands that live in a module of their own (``add_parser(commands, common)`` + ``run(args, masker)``)."""
    from safetyamp_pipeline.operator import doctor, metrics_command, rejected

    return [doctor, metrics_command, rejected]


def _explain(args: argparse.Namespace, masker: Masker) -> int:
    from safetyamp_pipeline.operator.explain import explain
    from safetyamp_pipeline.operator.explain_view import render

    store = open_store(args.store_url)
    result = explain(store, args.kind, args.key, settings_from_env(), ledger_limit=max(args.history, 0))
    sys.stdout.write(render(result, masker))
    return EXIT_OK


def _failures(args: argparse.Namespace, masker: Masker) -> int:
    entity = reports.parse_entity(args.entity)
    if args.action == "list":
        if args.key or args.all:
            raise OperatorError("`failures` lists; to act on one use `failures retry KEY` or `failures dismiss KEY`")
        print(reports.render_failures(open_store(args.store_url), entity, args.reason, args.format, masker))
        return EXIT_OK
    if args.action == "retry":
        if bool(args.key) == bool(args.all):
            raise OperatorError("failures retry: give a KEY or --all (not both)")
        print(reports.retry(open_store(args.store_url), args.key, entity, args.all))
        return EXIT_OK
    if not args.key or args.all:
        raise OperatorError("failures dismiss: give the KEY of one failure")
    print(reports.dismiss(open_store(args.store_url), args.key, entity))
    return EXIT_OK


def _ledger(args: argparse.Namespace, masker: Masker) -> int:
    if args.limit < 0:
        raise OperatorError("--limit must be 0 (all) or more")
    entity = reports.parse_entity(args.entity)
    since = reports.parse_since(args.since) if args.since else None
    rows = reports.ledger_rows(open_store(args.store_url), since=since, entity=entity, run_id=args.run_id, key=args.key,
                               status=args.status, limit=args.limit or None)
    if not rows and args.format == "table":
        print("No ledger entries match.")
    else:
        print(reports.render_ledger(rows, args.format, masker))
    return EXIT_NOT_FOUND if not rows and (args.run_id or args.key) else EXIT_OK


_COMMANDS = {"explain": _explain, "failures": _failures, "ledger": _ledger}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
        handler = _COMMANDS.get(args.command)
        if handler is None:
            handler = next(m.run for m in _plugin_modules() if args.command == m.COMMAND)
        return handler(args, Masker(getattr(args, "show_pii", False)))
    except OperatorError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one line, no traceback, nothing secret
        if os.environ.get("SAFETYAMP_DEBUG"):
            raise
        url = os.environ.get("SAFETYAMP_STORE_URL")
        message = mask_free_text(str(exc).splitlines()[0] if str(exc) else "")
        if url and url in message:
            message = message.replace(url, mask_url(url))
        print(f"{PROG}: error: {type(exc).__name__}: {message} (set SAFETYAMP_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
