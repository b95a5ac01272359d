"""requirements-serve.txt alone runs the service: a fresh venv, that file, uvicorn, one prediction.

This is the serving image's promise (no pandas, scikit-learn, LightGBM or MLflow) checked
without Docker. pip reuses its cache, so a rerun takes seconds plus the venv's creation.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
TRAINING_ONLY = ("pandas", "sklearn", "lightgbm", "mlflow", "pyarrow", "onnx", "evidently")


@pytest.mark.slow
def test_serve_requirements_alone_run_the_service(
    tmp_path: Path, serve: Callable, example: dict, api_keys: tuple[str, ...]
) -> None:
    venv = tmp_path / "serve-venv"
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(REPO / "requirements-serve.txt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    probe = "import importlib.util as u, sys; print(','.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    present = subprocess.run([str(python), "-c", probe, *TRAINING_ONLY], capture_output=True, text=True, check=True)
    assert present.stdout.strip() == "", f"training-only packages in the serving set: {present.stdout}"

    server = serve(python=str(python))
    response = httpx.post(f"{server.base_url}/predict", json=example, headers={"x-api-key": api_keys[0]}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] in (0, 1)
    assert 0.0 <= body["probability"] <= 1.0
    assert server.stop() in (0, -15)
