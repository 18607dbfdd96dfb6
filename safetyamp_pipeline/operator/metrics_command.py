"""``safetyamp-pipeline metrics``: Prometheus metrics (issue 18).

Placeholder wiring: the subcommand is registered by ``cli.py``; its body is being written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from safetyamp_pipeline.operator.context import OperatorError

COMMAND = "metrics"


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(COMMAND, help="Prometheus metrics (issue 18)")
    common(parser)


def run(args: argparse.Namespace, masker: Any) -> int:
    raise OperatorError("`metrics` is not available yet")
