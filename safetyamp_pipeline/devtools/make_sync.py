"""``make sync``: one complete sync on the sandbox, headless, with a summary table.

Seeds ``.sandbox/`` when it is missing, starts the emulators, runs ``safetyamp_sync`` in process with
``DAGSTER_HOME=.dagster_home`` and prints per-entity counts. Exits 1 when the run failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from safetyamp_pipeline.devtools.local import DEMO_CLIENT_RATE, prepare_local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sync", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--job", default="safetyamp_sync", help="job to run (default: safetyamp_sync)")
    parser.add_argument("--dry-run", action="store_true", help="plan and report, write nothing")
    args = parser.parse_args(argv)

    _, sandbox_dir, home = prepare_local()
    os.environ["DAGSTER_HOME"] = str(home)

    import dagster as dg

    from safetyamp_pipeline.sandbox.runtime import start_sandbox
    from safetyamp_pipeline.sync.headless import run_job, summary_table

    with start_sandbox(sandbox_dir, rate_limit=None) as sandbox:
        env = {**sandbox.env, "SAFETYAMP_RATE_LIMIT": DEMO_CLIENT_RATE, "DAGSTER_HOME": str(home)}
        started = time.monotonic()
        with dg.DagsterInstance.get() as instance:
            tags = {"dry_run": "true"} if args.dry_run else {}
            outcome = run_job(env, args.job, instance=instance, tags=tags)
        elapsed = time.monotonic() - started
    print()
    print(summary_table(outcome))
    print()
    status = "succeeded" if outcome.success else "FAILED"
    print(f"Run {outcome.run_id} {status} in {elapsed:.1f} s (DAGSTER_HOME={home}).")
    if not outcome.success:
        print(f"Failure: {outcome.failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
