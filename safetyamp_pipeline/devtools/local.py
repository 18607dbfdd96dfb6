"""Shared set-up for the make targets: the sandbox folder and a local ``DAGSTER_HOME``."""

from __future__ import annotations

import shutil
from pathlib import Path

SANDBOX_DIR_NAME = ".sandbox"
DAGSTER_HOME_NAME = ".dagster_home"
# The demo runs with the emulator's rate limit off and a generous client limit, so a first sync of
# ~2,000 records takes seconds instead of the 35 minutes that 60 requests/minute would cost.
DEMO_CLIENT_RATE = "100000"


def project_root() -> Path:
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").exists() and (candidate / "safetyamp_pipeline").is_dir():
            return candidate
    return here


def ensure_seeded(sandbox_dir: Path, employees: int = 1400) -> bool:
    """Seed the sandbox data set when the folder has none; returns whether it did."""
    if (sandbox_dir / "vista.db").exists():
        return False
    from safetyamp_pipeline.sandbox.generate import generate_dataset

    sandbox_dir.mkdir(parents=True, exist_ok=True)
    generate_dataset(sandbox_dir, employees=employees)
    return True


def ensure_dagster_home(root: Path) -> Path:
    home = root / DAGSTER_HOME_NAME
    home.mkdir(parents=True, exist_ok=True)
    config = root / "dagster.yaml"
    if config.exists() and not (home / "dagster.yaml").exists():
        shutil.copy(config, home / "dagster.yaml")
    # Create the instance's storage once, here: the webserver and the daemon starting together on
    # an empty DAGSTER_HOME can both try to create it ("alembic_version already exists").
    import dagster as dg

    dg.DagsterInstance.from_config(str(home)).dispose()
    return home


def prepare_local() -> tuple[Path, Path, Path]:
    """Seed ``.sandbox/`` if needed and set up ``.dagster_home``; returns (root, sandbox, home)."""
    root = project_root()
    sandbox_dir = root / SANDBOX_DIR_NAME
    if ensure_seeded(sandbox_dir):
        print(f"Seeded the sandbox data set in {sandbox_dir}")
    return root, sandbox_dir, ensure_dagster_home(root)
