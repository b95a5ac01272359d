"""The README's API flow, run as written: `make serve` in one shell, the README's block in another.

`make serve` starts with no API_KEY and no database, as on a fresh clone; the README's shell
blocks of "## The API" then run as one bash script in a fresh environment (no API_KEY exported),
from a folder holding the key file make serve wrote. The only edit is the port: the README says
8000, the test serves on a free one. The command make serve prints is run too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitoring.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_PORT = "127.0.0.1:8000"


def section_shell_blocks(heading: str) -> list[str]:
    """The ```bash blocks of one `## ` section of the README, in order."""
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)


def test_the_api_section_has_one_shell_flow_reading_the_served_key() -> None:
    (block,) = section_shell_blocks("The API")
    assert README_PORT in block and "/predict" in block
    assert "change-me" not in block, "a literal key never matches the one make serve uses"
    assert ".api-key" in block


@dataclass
class MakeServe:
    process: subprocess.Popen[str]
    workdir: Path
    port: int
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text()


@pytest.fixture
def make_serve(tmp_path: Path, model_path: Path) -> Iterator[MakeServe]:
    """`make serve` as a newcomer runs it: no API_KEY, no DATABASE_URL; its key file lands in `workdir`."""
    workdir = tmp_path / "shell"
    workdir.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"API_KEY", "DATABASE_URL", "MAKEFLAGS", "MFLAGS"}}
    env |= {"API_KEY_FILE": str(workdir / ".api-key"), "PREDICTION_LOG_DIR": str(tmp_path / "logs")}
    venv = Path(sys.executable).parent.parent
    output_path = tmp_path / "make-serve.log"
    with output_path.open("w") as sink:
        process = subprocess.Popen(
            # -o: this environment is installed already; make must not reinstall it mid-test.
            ["make", "--no-print-directory", "-o", f"{venv}/.serve-installed", "serve", f"PORT={port}", f"VENV={venv}"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group: make, bash and uvicorn stop together
        )  # fmt: skip
    server = MakeServe(process, workdir, port, output_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"make serve exited {process.returncode}:\n{server.output()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"make serve not ready after 60 s:\n{server.output()}"
            time.sleep(0.1)  # polling interval, not an assertion
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _fresh_shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)}  # a new terminal: no API_KEY
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def _prediction(stdout: str) -> dict[str, object]:
    body = json.loads(stdout.strip().splitlines()[-1])
    assert body["prediction"] in (0, 1), body
    assert 0.0 <= float(body["probability"]) <= 1.0  # type: ignore[arg-type]
    assert body["decision"] in ("accepted", "refused")
    return body


@pytest.mark.slow
def test_the_readme_api_flow_works_when_pasted_into_a_fresh_shell(make_serve: MakeServe) -> None:
    key_file = make_serve.workdir / ".api-key"
    assert key_file.is_file() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    key = key_file.read_text().strip()
    assert len(key) >= 24 and key in make_serve.output(), "make serve shows the key it serves with"

    script = "\n".join(section_shell_blocks("The API")).replace(README_PORT, f"127.0.0.1:{make_serve.port}")
    result = _fresh_shell(script, make_serve.workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    _prediction(result.stdout)

    # The same script without the key file gets the 401 the issue reported: the check can fail.
    key_file.rename(key_file.with_suffix(".moved"))
    broken = _fresh_shell(script.replace("$(cat .api-key)", "change-me"), make_serve.workdir)
    assert json.loads(broken.stdout)["error"] == "unauthorized"


@pytest.mark.slow
def test_the_command_make_serve_prints_works_when_pasted(make_serve: MakeServe) -> None:
    printed = make_serve.output()
    start = printed.index("export API_KEY=")
    lines = printed[start:].split("\n\n")[0]
    assert f"http://127.0.0.1:{make_serve.port}/predict" in lines and "curl" in lines
    result = _fresh_shell(lines, make_serve.workdir)
    assert result.returncode == 0, lines + "\n" + result.stdout + result.stderr
    _prediction(result.stdout)
