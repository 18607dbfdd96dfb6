"""One sync in a fresh Python process (the cold start a scheduled run pays: imports, definitions,
resources). ``python -m benchmarks.cold ENV_JSON``; prints one JSON line with the run id and the
Dagster run's wall time. The parent measures the process's own wall time around it."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time

STARTED = time.monotonic()


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as handle:
        env = json.load(handle)
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        import dagster as dg

        from benchmarks.measure import run_wall_seconds
        from safetyamp_pipeline.sync.headless import run_job

        instance = dg.DagsterInstance.local_temp(env["DAGSTER_HOME"])
        try:
            outcome = run_job(env, "safetyamp_sync", instance=instance)
            wall = run_wall_seconds(instance, outcome.run_id)
        finally:
            instance.dispose()
    print(
        json.dumps(
            {
                "run_id": outcome.run_id,
                "success": outcome.success,
                "failure": outcome.failure,
                "run_wall_seconds": round(wall, 3),
                "in_process_seconds": round(time.monotonic() - STARTED, 3),
                "safetyamp_api_calls": outcome.total("api_calls"),
            }
        )
    )
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
