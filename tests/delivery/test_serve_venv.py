"""requirements-serve.lock alone runs the service: a fresh venv, that lock, uvicorn, one prediction.

This is the serving image's promise (no pandas, scikit-learn, LightGBM or MLflow; every file
checked against the lock's sha256, wheels only, as the Dockerfile installs it) checked without
Docker. pip reuses its cache, so a rerun takes seconds plus the venv's creation. The server runs
with a writable HOME, as the image's user has: onnxruntime then starts without its telemetry
warning (shown first to appear with an unwritable HOME, so the check can fail).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
TRAINING_ONLY = ("pandas", "sklearn", "lightgbm", "mlflow", "pyarrow", "onnx", "evidently")
TELEMETRY_WARNING = "Failed to persist telemetry device ID"


@pytest.mark.slow
def test_serve_lock_alone_runs_the_service(
    tmp_path: Path, serve: Callable, example: dict, api_keys: tuple[str, ...], model_path: Path
) -> None:
    venv = tmp_path / "serve-venv"
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes"]
    bootstrap = subprocess.run([*pip, "-r", str(REPO / "requirements-pip.lock")], capture_output=True, text=True)
    assert bootstrap.returncode == 0, bootstrap.stderr[-3000:]  # pip itself first, as the Makefile does
    install = subprocess.run(
        [*pip, "--only-binary=:all:", "-r", str(REPO / "requirements-serve.lock")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    probe = "import importlib.util as u, sys; print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    present = subprocess.run([str(python), "-c", probe, *TRAINING_ONLY], capture_output=True, text=True, check=True)
    assert present.stdout.strip() == "", f"training-only packages in the serving set: {present.stdout}"

    load = f"import onnxruntime as o; o.InferenceSession({str(model_path)!r}, providers=['CPUExecutionProvider'])"
    unwritable = subprocess.run(
        [str(python), "-c", load], env={"PATH": "/usr/bin:/bin", "HOME": "/dev/null"}, capture_output=True, text=True
    )
    assert unwritable.returncode == 0 and TELEMETRY_WARNING in unwritable.stderr, unwritable.stderr

    home = tmp_path / "home"  # the image's /home/app: the runtime user's own, writable
    home.mkdir()
    server = serve(python=str(python), HOME=str(home))
    response = httpx.post(f"{server.base_url}/predict", json=example, headers={"x-api-key": api_keys[0]}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] in (0, 1)
    assert 0.0 <= body["probability"] <= 1.0
    assert server.stop() in (0, -15)
    assert TELEMETRY_WARNING not in server.output(), server.output()
