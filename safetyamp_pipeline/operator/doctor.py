"""``safetyamp-pipeline doctor``: check that every system answers (issue 17).

Placeholder wiring: the subcommand is registered by ``cli.py``; its body is being written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from safetyamp_pipeline.operator.context import OperatorError

COMMAND = "doctor"


def add_parser(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = commands.add_parser(COMMAND, help="check that every system answers (issue 17)")
    common(parser)


def run(args: argparse.Namespace, masker: Any) -> int:
    raise OperatorError("`doctor` is not available yet")
