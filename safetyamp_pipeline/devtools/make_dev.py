"""``make dev``: the Dagster UI on the sandbox.

Seeds ``.sandbox/`` when missing, starts the emulators (rate limit off for a quick demo), and runs
``dagster dev`` with the sandbox environment and ``DAGSTER_HOME=.dagster_home`` until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from safetyamp_pipeline.devtools.local import DEMO_CLIENT_RATE, prepare_local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dev", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", default="3000", help="webserver port (default 3000)")
    parser.add_argument("--host", default="127.0.0.1", help="webserver host (default 127.0.0.1)")
    args = parser.parse_args(argv)

    root, sandbox_dir, home = prepare_local()

    from safetyamp_pipeline.sandbox.runtime import start_sandbox

    with start_sandbox(sandbox_dir, rate_limit=None) as sandbox:
        env = {**os.environ, **sandbox.env, "SAFETYAMP_RATE_LIMIT": DEMO_CLIENT_RATE, "DAGSTER_HOME": str(home)}
        print(f"Sandbox up (env file: {sandbox_dir / 'sandbox.env'}). Dagster UI: http://{args.host}:{args.port}")
        command = [
            os.path.join(os.path.dirname(sys.executable), "dagster"), "dev",
            "-w", str(root / "workspace.yaml"), "-h", args.host, "-p", str(args.port),
        ]
        try:
            return subprocess.call(command, env=env, cwd=root)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
