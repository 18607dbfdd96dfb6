"""Logs as production writes them: one JSON object per line on stdout with no secret
(``SAFETYAMP_LOG_FORMAT=json``), and the API clients' warnings in the run's own Dagster log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from safetyamp_pipeline_tests.deploy.paths import HELM_VALUES, LOCAL_INSTANCE_YAML, REPO_ROOT, load_yaml

TOKEN = "tok-9f8e7d6c5b4a"

# A SafetyAmp-shaped server on 127.0.0.1 that answers 503 once, then an empty list: the real
# client retries and logs its back-off warning, inside a Dagster op, on an instance configured
# with the python_logs block of helm-values.yaml.
SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, yaml
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import dagster as dg
    import safetyamp_pipeline.definitions  # loading the code location applies SAFETYAMP_LOG_FORMAT
    from safetyamp_pipeline.clients.safetyamp import SafetyAmpClient

    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append(self.path)
            status, body = (503, b"busy") if len(calls) == 1 else (200, b'{"data": []}')
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    python_logs = json.loads(sys.argv[1])

    @dg.op
    def read_users(context):
        client = SafetyAmpClient(f"http://127.0.0.1:{server.server_port}", sys.argv[2], "t.example",
                                 max_retries=2, sleep=lambda s: None)
        return len(client.list("users"))

    @dg.job
    def probe():
        read_users()

    with dg.instance_for_test(overrides={"python_logs": python_logs}) as instance:
        result = probe.execute_in_process(instance=instance)
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
        print("RUN_LOG " + json.dumps([m for m in messages if "503" in m]), file=sys.stderr)
    server.shutdown()
    """
)


def _python_logs() -> dict:
    helm = load_yaml(HELM_VALUES)["pythonLogs"]
    return {
        "managed_python_loggers": load_yaml(LOCAL_INSTANCE_YAML)["python_logs"]["managed_python_loggers"],
        "python_log_level": helm["pythonLogLevel"],
        "dagster_handler_config": helm["dagsterHandlerConfig"],
    }


def test_json_lines_on_stdout_and_the_retry_warning_in_the_run_log(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SAFETYAMP_LOG_FORMAT": "json",
        "SAFETYAMP_TOKEN": TOKEN,
        "DAGSTER_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(_python_logs()), TOKEN],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, "nothing was logged on stdout"
    records = [json.loads(line) for line in lines]  # every stdout line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    retry = [r for r in records if r["logger"].startswith("safetyamp_pipeline.clients") and "503" in r["message"]]
    assert retry and retry[0]["level"] == "WARNING"
    assert TOKEN not in done.stdout + done.stderr
    run_log = json.loads(done.stderr.split("RUN_LOG ", 1)[1].splitlines()[0])
    assert run_log, "the client's retry warning is in the run's Dagster log (managed logger)"


def test_helm_and_local_manage_the_same_client_loggers() -> None:
    helm = load_yaml(HELM_VALUES)["pythonLogs"]["managedPythonLoggers"]
    local = yaml.safe_load(LOCAL_INSTANCE_YAML.read_text())["python_logs"]["managed_python_loggers"]
    assert helm == local
    clients = REPO_ROOT / "safetyamp_pipeline" / "clients"
    with_loggers = [p for p in clients.glob("*.py") if "logging.getLogger(__name__)" in p.read_text()]
    assert with_loggers
    for path in with_loggers:
        module = f"safetyamp_pipeline.clients.{path.stem}"
        assert any(module == name or module.startswith(name + ".") for name in helm), module


def test_text_is_the_default_and_a_typo_is_refused() -> None:
    from safetyamp_pipeline.logs import configure_logging

    assert configure_logging({}) is False
    try:
        configure_logging({"SAFETYAMP_LOG_FORMAT": "jsn"})
    except ValueError as exc:
        assert "SAFETYAMP_LOG_FORMAT" in str(exc)
    else:
        raise AssertionError("a misspelt format must be refused")


def test_webserver_env_switch_gives_json_lines(tmp_path: Path) -> None:
    """The chart sets DAGSTER_WEBSERVER_LOG_FORMAT=json on the webserver (Dagster's own JSON
    format; click reads DAGSTER_WEBSERVER_<OPTION>): its lines are JSON objects."""
    import selectors
    import socket
    import time

    values = load_yaml(HELM_VALUES)["dagsterWebserver"]
    env_value = {item["name"]: item["value"] for item in values["env"]}["DAGSTER_WEBSERVER_LOG_FORMAT"]
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    webserver = Path(sys.executable).parent / "dagster-webserver"
    env = {"PATH": os.environ.get("PATH", ""), "DAGSTER_HOME": str(tmp_path), "DAGSTER_WEBSERVER_LOG_FORMAT": env_value}
    process = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("Serving dagster-webserver" in line for line in lines):
            if selector.select(timeout=1):
                line = process.stdout.readline()
                if not line:
                    break
                if line.strip():
                    lines.append(line)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert any("Serving dagster-webserver" in line for line in lines), lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_every_dagster_process_is_asked_for_json_lines() -> None:
    """The code location and run pods follow SAFETYAMP_LOG_FORMAT; Dagster's own webserver and daemon
    take their CLI's --log-format (webserver through its DAGSTER_WEBSERVER_LOG_FORMAT variable, the
    daemon through the chart's dagsterDaemon.logFormat)."""
    values = load_yaml(HELM_VALUES)
    code_env = {e["name"]: e.get("value") for e in values["dagster-user-deployments"]["deployments"][0]["env"]}
    webserver_env = {e["name"]: e.get("value") for e in values["dagsterWebserver"]["env"]}
    assert code_env["SAFETYAMP_LOG_FORMAT"] == "json"
    assert webserver_env["DAGSTER_WEBSERVER_LOG_FORMAT"] == "json"
    assert values["dagsterDaemon"]["logFormat"] == "json"
