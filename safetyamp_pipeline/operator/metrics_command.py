"""``safetyamp-pipeline metrics``: the sync's Prometheus metrics (DESIGN §6).

    safetyamp-pipeline metrics --once                          exposition text on stdout
    safetyamp-pipeline metrics serve [--host H] [--port 9090]  the same on GET /metrics

The store is the pipeline's (``SAFETYAMP_STORE_URL`` or ``--store-url``); the Dagster instance is the
one under ``DAGSTER_HOME``. ``--once`` exits 1 when the store or the instance could not be read (the
text is printed all the same, with ``safetyamp_exporter_*_up 0``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from safetyamp_pipeline.operator.context import EXIT_NOT_FOUND, EXIT_OK, OperatorError, open_store
from safetyamp_pipeline.operator.metrics import DEFAULT_CACHE_SECONDS, SyncCollector

COMMAND = "metrics"
DEFAULT_PORT = 9090
DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - the exporter's container port; `--host 127.0.0.1` locally


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(
        COMMAND, help="Prometheus metrics: `metrics --once` prints them, `metrics serve` answers GET /metrics"
    )
    parser.add_argument("action", nargs="?", choices=["serve"], help="serve: an HTTP server answering GET /metrics")
    parser.add_argument("--once", action="store_true", help="print the exposition text once and exit")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"serve: address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"serve: port (default {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--cache-seconds", type=float, default=DEFAULT_CACHE_SECONDS, metavar="S",
                        help=f"serve: reuse one collection for S seconds (default {DEFAULT_CACHE_SECONDS:g})")
    common(parser)


def build_registry(store_url: str | None, cache_seconds: float = DEFAULT_CACHE_SECONDS) -> tuple[CollectorRegistry, SyncCollector]:
    def instance() -> Any:
        import dagster as dg

        return dg.DagsterInstance.get()

    collector = SyncCollector(lambda: open_store(store_url), instance, cache_seconds=cache_seconds)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry, collector


def serve(registry: CollectorRegistry, host: str, port: int) -> tuple[Any, threading.Thread]:
    """prometheus_client's own threaded HTTP server on (host, port); returns it and its thread."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread


def run(args: argparse.Namespace, masker: Any) -> int:
    if args.once == (args.action == "serve"):
        raise OperatorError("metrics: give --once (print once) or `serve` (HTTP), not both")
    if args.cache_seconds < 0:
        raise OperatorError("--cache-seconds must be 0 or more")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    if args.once:
        registry, collector = build_registry(args.store_url, cache_seconds=0)
        sys.stdout.write(generate_latest(registry).decode())
        up = collector.snapshot().samples
        healthy = all(v == 1 for name in ("safetyamp_exporter_store_up", "safetyamp_exporter_instance_up") for _, v in up[name])
        return EXIT_OK if healthy else EXIT_NOT_FOUND
    if not 0 <= args.port <= 65535:
        raise OperatorError(f"--port must be 0..65535, got {args.port}")
    registry, _ = build_registry(args.store_url, cache_seconds=args.cache_seconds)
    try:
        server, thread = serve(registry, args.host, args.port)
    except OSError as exc:
        raise OperatorError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    bound_host, bound_port = server.server_address[:2]
    print(f"Serving metrics on http://{bound_host}:{bound_port}/metrics", flush=True)
    try:
        thread.join()
    finally:
        server.shutdown()
    return EXIT_OK
