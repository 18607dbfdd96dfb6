"""``safetyamp-sandbox``: seed a synthetic data set, start/stop the emulators.

    safetyamp-sandbox seed --dir DIR [--employees N] [--seed S] [--as-of YYYY-MM-DD]
    safetyamp-sandbox up --dir DIR [--fixtures FIXDIR] [--rate-limit N] [--port-safetyamp P]
                         [--port-samsara P] [--port-graph P] [--error-rate X] [--drop-rate X]
                         [--latency-ms N] [--samsara-empty-pages] [--detach]
    safetyamp-sandbox down --dir DIR
    safetyamp-sandbox status --dir DIR

``up`` serves until SIGINT/SIGTERM and records its pid in ``DIR/sandbox.pid``; ``--detach`` runs
it in the background (log in ``DIR/sandbox.log``) and returns once ``DIR/sandbox.env`` is written
and every server answers. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or a bad fixture file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

PID_FILE = "sandbox.pid"
LOG_FILE = "sandbox.log"
EXIT_FAILURE = 1
EXIT_USAGE = 2
DETACH_TIMEOUT = 60.0
DOWN_TIMEOUT = 30.0
PROG = "safetyamp-sandbox"


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------------
# Arguments


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Local emulators of SafetyAmp, Samsara and Graph."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser("seed", help="write a synthetic data set (vista.db + emulator states) to DIR")
    seed.add_argument("--dir", required=True, type=Path)
    seed.add_argument("--employees", type=int, default=1400)
    seed.add_argument("--seed", type=int, default=7)
    seed.add_argument("--as-of", type=date.fromisoformat, default=None, help="anchor date (default today)")

    up = commands.add_parser("up", help="start the emulators on DIR and write DIR/sandbox.env")
    up.add_argument("--dir", required=True, type=Path)
    up.add_argument("--fixtures", type=Path, default=None, help="copy these fixture files into DIR first")
    up.add_argument(
        "--rate-limit", type=_non_negative_int, default=60, help="SafetyAmp requests/minute; 0 = off"
    )
    up.add_argument("--host", default="127.0.0.1")
    for service in ("safetyamp", "samsara", "graph"):
        up.add_argument(f"--port-{service}", type=_port, default=0, help="0 = any free port")
    up.add_argument("--error-rate", type=_rate, default=0.0, help="share of API requests answered 5xx")
    up.add_argument(
        "--drop-rate", type=_rate, default=0.0, help="share of API requests whose connection drops"
    )
    up.add_argument(
        "--latency-ms", type=_non_negative_int, default=0, help="delay added to every API request"
    )
    up.add_argument("--fault-seed", type=int, default=None)
    up.add_argument(
        "--samsara-empty-pages", action="store_true", help="insert empty Samsara pages mid-listing"
    )
    up.add_argument("--graph-token-lifetime", type=_non_negative_int, default=3600)
    up.add_argument(
        "--safetyamp-max-page-size",
        type=_positive_int,
        default=100,
        help="largest list `limit` SafetyAmp grants; larger ones are clamped silently (default 100)",
    )
    up.add_argument("--detach", action="store_true", help="run in the background and return when ready")

    down = commands.add_parser("down", help="stop the sandbox started with up on DIR")
    down.add_argument("--dir", required=True, type=Path)

    status = commands.add_parser("status", help="say whether a sandbox runs on DIR (exit 0) or not (exit 3)")
    status.add_argument("--dir", required=True, type=Path)
    return parser


# --------------------------------------------------------------------------------------------
# seed


def cmd_seed(args: argparse.Namespace) -> int:
    from safetyamp_pipeline.sandbox.generate import generate_dataset

    try:
        summary = generate_dataset(args.dir, employees=args.employees, seed=args.seed, as_of=args.as_of)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    print(
        f"Wrote the data set to {Path(args.dir).resolve()}: {summary.employees_active} active and "
        f"{summary.employees_terminated} terminated employees, {summary.jobs_open} open jobs, "
        f"{summary.vehicles} vehicles, {summary.graph_users} Entra users."
    )
    return 0


# --------------------------------------------------------------------------------------------
# pid file helpers


def _pid_path(directory: Path) -> Path:
    return Path(directory) / PID_FILE


def _read_pid(directory: Path) -> int | None:
    try:
        return int(_pid_path(directory).read_text().strip())
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie nobody reaped yet has exited for our purpose
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_sandbox_process(pid: int) -> bool:
    """Guard against a recycled pid: the process must be this CLI's ``up``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"sandbox" in cmdline and b"up" in cmdline


def running_pid(directory: Path) -> int | None:
    pid = _read_pid(directory)
    if pid is None or not process_alive(pid) or not _is_sandbox_process(pid):
        return None
    return pid


# --------------------------------------------------------------------------------------------
# up


def _fault_config(args: argparse.Namespace):
    from safetyamp_pipeline.sandbox.server import FaultConfig

    if not (args.error_rate or args.drop_rate or args.latency_ms):
        return None
    return FaultConfig(
        error_rate=args.error_rate, drop_rate=args.drop_rate, latency_ms=args.latency_ms, seed=args.fault_seed
    )


def _describe(sandbox) -> str:
    return "\n".join(
        [
            f"SafetyAmp emulator: {sandbox.urls['safetyamp']}",
            f"Samsara emulator:   {sandbox.urls['samsara']}",
            f"Graph + login:      {sandbox.urls['graph']}  (CA: {sandbox.certs.ca_path})",
            f"Vista database:     {sandbox.env['VIEWPOINT_DB_URL']}",
            f"Settings:           {sandbox.env_path}",
        ]
    )


def cmd_up(args: argparse.Namespace) -> int:
    directory = Path(args.dir).resolve()
    other = running_pid(directory)
    if other is not None:
        raise CliError(
            f"a sandbox is already running on {directory} (pid {other}); run `{PROG} down --dir {directory}`"
        )
    if args.fixtures is not None and not Path(args.fixtures).is_dir():
        raise CliError(f"{args.fixtures}: fixture directory does not exist", EXIT_USAGE)
    if args.detach:
        return _up_detached(args, directory)
    return _up_foreground(args, directory)


def _up_foreground(args: argparse.Namespace, directory: Path) -> int:
    from safetyamp_pipeline.sandbox.runtime import SandboxFixtureError, start_sandbox

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sandbox = start_sandbox(
                directory,
                fixtures=args.fixtures,
                rate_limit=args.rate_limit or None,
                host=args.host,
                ports={
                    "safetyamp": args.port_safetyamp,
                    "samsara": args.port_samsara,
                    "graph": args.port_graph,
                },
                faults=_fault_config(args),
                samsara_empty_pages=args.samsara_empty_pages,
                graph_token_lifetime=args.graph_token_lifetime,
                safetyamp_max_page_size=args.safetyamp_max_page_size,
            )
        except SandboxFixtureError as exc:
            raise CliError(str(exc), EXIT_USAGE) from exc
        except OSError as exc:
            raise CliError(f"could not start the sandbox: {exc}") from exc
        pid_path = _pid_path(directory)
        try:
            pid_path.write_text(f"{os.getpid()}\n")
            print(_describe(sandbox), flush=True)
            print("Serving; stop with Ctrl-C or `safetyamp-sandbox down --dir DIR`.", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            sandbox.stop()
            if _read_pid(directory) == os.getpid():
                pid_path.unlink(missing_ok=True)
        print("Sandbox stopped.", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _child_argv(args: argparse.Namespace, directory: Path) -> list[str]:
    argv = [sys.executable, "-m", "safetyamp_pipeline.sandbox.cli", "up", "--dir", str(directory)]
    if args.fixtures is not None:
        argv += ["--fixtures", str(Path(args.fixtures).resolve())]
    argv += ["--rate-limit", str(args.rate_limit), "--host", args.host]
    argv += ["--port-safetyamp", str(args.port_safetyamp), "--port-samsara", str(args.port_samsara)]
    argv += ["--port-graph", str(args.port_graph), "--graph-token-lifetime", str(args.graph_token_lifetime)]
    argv += ["--error-rate", str(args.error_rate), "--drop-rate", str(args.drop_rate)]
    argv += ["--latency-ms", str(args.latency_ms)]
    argv += ["--safetyamp-max-page-size", str(args.safetyamp_max_page_size)]
    if args.fault_seed is not None:
        argv += ["--fault-seed", str(args.fault_seed)]
    if args.samsara_empty_pages:
        argv.append("--samsara-empty-pages")
    return argv


def _last_error_line(log_path: Path) -> str:
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _servers_answer(env: dict[str, str]) -> bool:
    import requests

    checks = [
        (env["SAFETYAMP_API_URL"], True),
        (env["SAMSARA_API_URL"], True),
        (env["MS_GRAPH_API_URL"], env["SAFETYAMP_CA_BUNDLE"]),
    ]
    try:
        for origin, verify in checks:
            response = requests.get(origin + "/__sandbox/requests", timeout=2, verify=verify)
            if response.status_code != 200:
                return False
    except requests.RequestException:
        return False
    return True


def _up_detached(args: argparse.Namespace, directory: Path) -> int:
    from safetyamp_pipeline.sandbox.runtime import ENV_FILE, load_env_file

    directory.mkdir(parents=True, exist_ok=True)
    env_path, log_path = directory / ENV_FILE, directory / LOG_FILE
    env_path.unlink(missing_ok=True)  # stale from an earlier run: readiness is a fresh file
    _pid_path(directory).unlink(missing_ok=True)
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            _child_argv(args, directory),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(directory),
        )
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            reason = _last_error_line(log_path) or f"exit status {code}"
            raise CliError(
                reason.removeprefix(f"{PROG}: error: "), code if code in (EXIT_USAGE,) else EXIT_FAILURE
            )
        if env_path.exists() and _read_pid(directory) == child.pid:
            env = load_env_file(env_path)
            if _servers_answer(env):
                print(_describe_env(env, env_path), flush=True)
                print(f"Running in the background (pid {child.pid}, log {log_path}).", flush=True)
                return 0
        time.sleep(0.1)
    child.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(10)
    raise CliError(f"the sandbox did not become ready within {DETACH_TIMEOUT:.0f} s; see {log_path}")


def _describe_env(env: dict[str, str], env_path: Path) -> str:
    return "\n".join(
        [
            f"SafetyAmp emulator: {env['SAFETYAMP_API_URL']}",
            f"Samsara emulator:   {env['SAMSARA_API_URL']}",
            f"Graph + login:      {env['MS_GRAPH_API_URL']}  (CA: {env['SAFETYAMP_CA_BUNDLE']})",
            f"Vista database:     {env['VIEWPOINT_DB_URL']}",
            f"Settings:           {env_path}",
        ]
    )


# --------------------------------------------------------------------------------------------
# down / status


def cmd_down(args: argparse.Namespace) -> int:
    directory = Path(args.dir).resolve()
    pid = running_pid(directory)
    if pid is None:
        _pid_path(directory).unlink(missing_ok=True)
        print(f"No sandbox is running on {directory}.")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while process_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            _pid_path(directory).unlink(missing_ok=True)
            raise CliError(f"the sandbox (pid {pid}) did not stop within {DOWN_TIMEOUT:.0f} s; killed it")
        time.sleep(0.05)
    _pid_path(directory).unlink(missing_ok=True)
    print(f"Stopped the sandbox on {directory} (pid {pid}).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from safetyamp_pipeline.sandbox.runtime import ENV_FILE, load_env_file

    directory = Path(args.dir).resolve()
    pid = running_pid(directory)
    if pid is None:
        print(f"No sandbox is running on {directory}.")
        return 3
    env_path = directory / ENV_FILE
    print(f"Sandbox running on {directory} (pid {pid}).")
    if env_path.exists():
        print(_describe_env(load_env_file(env_path), env_path))
    return 0


COMMANDS = {"seed": cmd_seed, "up": cmd_up, "down": cmd_down, "status": cmd_status}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
