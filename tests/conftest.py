"""Fixtures for the API tests: the committed artifact, settings in tmp_path, a running client.

`TEST_MODEL_PATH` points the suite at another artifact of the same contract (its reference
sample is looked for beside it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contract.metadata import ModelMetadata
from contract.spec import FeatureSpec
from inference.app import create_app
from inference.settings import Settings
from tests import response_contract

REPO = Path(__file__).resolve().parents[1]
API_KEYS = ("test-key-0123456789", "rotated-key-9876543210")
UNSET = "<unset>"  # pass as an environment value to `serve` to leave the variable out


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A small model trained, registered and exported once per session (tests/small_model.py)."""
    from tests.small_model import train_and_export  # training libraries only for the model tests

    return train_and_export(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = Path(os.environ.get("TEST_MODEL_PATH", REPO / "models" / "credit_scoring.onnx")).resolve()
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make model` builds it")
    return path


@pytest.fixture(scope="session")
def reference_sample_path(model_path: Path) -> Path:
    path = model_path.with_name("reference_sample.parquet")
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make model` builds it")
    return path


@pytest.fixture(scope="session")
def metadata(model_path: Path) -> ModelMetadata:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return ModelMetadata.from_onnx_map(session.get_modelmeta().custom_metadata_map)


@pytest.fixture(scope="session")
def spec(metadata: ModelMetadata) -> FeatureSpec:
    return metadata.feature_spec


@pytest.fixture
def example(spec: FeatureSpec) -> dict[str, Any]:
    return spec.example()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def make_settings(model_path: Path, log_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "api_key": ",".join(API_KEYS),
            "model_path": model_path,
            "prediction_log_dir": log_dir,
            **overrides,
        }
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture(params=[True, False], ids=["lean-door", "fastapi-door"])
def app(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> FastAPI:
    """The app, once per door: every API test proves both doors give the same answers."""
    return create_app(make_settings(fast_door=request.param))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as running:  # runs the lifespan: model loaded, log writer started
        response_contract.install(running, app)  # every answer checked against its declared model
        yield running


@pytest.fixture
def api_keys() -> tuple[str, ...]:
    """The keys the settings fixtures configure (API_KEY="<first>,<second>")."""
    return API_KEYS


@pytest.fixture
def auth() -> dict[str, str]:
    return {"x-api-key": API_KEYS[0]}


@pytest.fixture
def read_records() -> Callable[[Path], list[dict[str, Any]]]:
    """Reads every prediction record under a directory, file by file."""

    def read(directory: Path) -> list[dict[str, Any]]:
        return [
            orjson.loads(line)
            for path in sorted(directory.glob("predictions-*.jsonl"))
            for line in path.read_bytes().splitlines()
        ]

    return read


# A real server: uvicorn in a subprocess on a free loopback port.


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval, not an assertion
        pytest.fail(f"server not ready after {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a container runtime sends it, and wait for the graceful exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve(tmp_path: Path, model_path: Path, api_keys: tuple[str, ...]) -> Iterator[Callable[..., Server]]:
    """Starts `python -m uvicorn inference.app:app`; `wait=True` returns once /ready answers 200."""
    started: list[Server] = []

    def start(python: str = sys.executable, wait: bool = True, entry_point: bool = False, **env: str) -> Server:
        """`entry_point=True` runs `python -m inference` (the container's command) instead."""
        port = free_port()
        log_path = tmp_path / f"uvicorn-{port}.log"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "API_KEY": ",".join(api_keys),
            "MODEL_PATH": str(model_path),
            "PREDICTION_LOG_DIR": str(tmp_path / "logs"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            **env,
        }
        environment = {k: v for k, v in environment.items() if v != UNSET}
        with log_path.open("w") as log:
            command = (
                [python, "-m", "inference"]  # reads HOST and PORT from the environment
                if entry_point
                else [python, "-m", "uvicorn", "inference.app:app", "--host", "127.0.0.1", "--port", str(port)]
                + ["--no-access-log"]
            )
            process = subprocess.Popen(
                command,
                cwd=tmp_path,  # no stray .env; relative paths land in tmp
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log_path)
        started.append(server)
        if wait:
            server.wait_ready()
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def challenger_copy(model_path: Path, directory: Path, threshold_factor: float) -> Path:
    """The champion's graph as a challenger: version "challenger-7" and its threshold times
    `threshold_factor`, so the scores are equal and the decisions in between flip."""
    import onnx

    model = onnx.load(str(model_path))
    for prop in model.metadata_props:
        if prop.key == "model_version":
            prop.value = "challenger-7"
        elif prop.key == "threshold":
            prop.value = repr(float(prop.value) * threshold_factor)
    path = directory / "challenger.onnx"
    onnx.save(model, str(path))
    return path
