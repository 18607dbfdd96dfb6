"""What the production image holds: the locked production dependencies, the product code, and
nothing of the sandbox (issue 14 item 3, issue 17 item 8).

`safetyamp_pipeline/sandbox/` (the emulators) and `safetyamp_pipeline/devtools/` (the make-target
helpers) are development tooling: they stay out of the image (.dockerignore) and no product
module imports them, so the code location loads without starlette, uvicorn or trustme.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from safetyamp_pipeline_tests.deploy.dockerfile import (
    DOCKERFILE,
    ignore_patterns,
    is_ignored,
    parse_stages,
    pip_installs,
)
from safetyamp_pipeline_tests.deploy.paths import REPO_ROOT

LOCK = REPO_ROOT / "requirements.lock"
SANDBOX_ONLY = {"starlette", "uvicorn", "trustme"}
TOOLING = ("safetyamp_pipeline.sandbox", "safetyamp_pipeline.devtools")


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", LOCK.read_text(), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def test_lock_pins_every_production_dependency_within_its_range() -> None:
    pins = locked()
    for line in _pyproject()["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock (regenerate it)"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {line}"


def test_lock_has_no_sandbox_or_dev_package() -> None:
    pins = locked()
    extras = _pyproject()["project"]["optional-dependencies"]
    dev_only = {canonicalize_name(Requirement(line).name) for line in extras["dev"]}
    assert not SANDBOX_ONLY & set(pins)
    assert not {"dagster-webserver", "pytest", "pyright", "ruff", "playwright"} & set(pins)
    assert not dev_only & set(pins) - {"jsonschema"}, "dev tools are not production dependencies"


def test_dockerfile_installs_only_the_lock_and_the_project() -> None:
    builder = parse_stages(DOCKERFILE.read_text())[0]
    installs = [command[command.index("install") + 1 :] for command in pip_installs(builder)]
    assert installs == [["--require-hashes", "--no-deps", "-r", "requirements.lock"], ["--no-deps", "-e", "."]]


def test_sandbox_and_devtools_stay_out_of_the_build_context() -> None:
    patterns = ignore_patterns()
    assert is_ignored("safetyamp_pipeline/sandbox/cli.py", patterns)
    assert is_ignored("safetyamp_pipeline/devtools/local.py", patterns)
    assert not is_ignored("requirements.lock", patterns)
    assert not is_ignored("safetyamp_pipeline/definitions.py", patterns)


def _imports(tree: ast.AST, module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{base}" if base else package
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_product_code_never_imports_the_sandbox_or_devtools() -> None:
    package = REPO_ROOT / "safetyamp_pipeline"
    offenders = []
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if module.startswith(TOOLING):
            continue
        bad = {name for name in _imports(ast.parse(path.read_text()), module) if name.startswith(TOOLING)}
        bad |= {name for name in _imports(ast.parse(path.read_text()), module) if name.split(".")[0] in SANDBOX_ONLY}
        if bad:
            offenders.append(f"{module}: {sorted(bad)}")
    assert offenders == []


def test_loading_the_code_location_imports_no_sandbox_package() -> None:
    code = (
        "import json, sys\n"
        "from safetyamp_pipeline.definitions import defs\n"
        "definitions = defs()\n"
        "definitions.resolve_all_job_defs()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(SANDBOX_ONLY)!r} or m.startswith({TOOLING!r}))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SAFETYAMP_ENV": "production", "SAFETYAMP_AUTOMATION_DEFAULT": "stopped"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_import_check_sees_a_sandbox_import() -> None:
    code = "import sys; import safetyamp_pipeline.sandbox.server; print('starlette' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "True", "the emulator server is what pulls starlette in"
