"""Start-up refuses, with a one-line reason, when the key is missing or the model unusable."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from inference.app import create_app
from inference.lifespan import StartupError
from inference.settings import Settings, get_settings

UNSET = "<unset>"


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.chdir(tmp_path)  # no .env file either
    monkeypatch.delenv("API_KEY", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_refuses_without_api_key(no_env: pytest.MonkeyPatch, model_path: Path) -> None:
    no_env.setenv("MODEL_PATH", str(model_path))
    app = create_app()
    with pytest.raises(StartupError, match="^API_KEY is not set"), TestClient(app):
        pass
    assert TestClient(app).get("/ready").status_code == 503


def test_reads_the_environment_at_start_up(no_env: pytest.MonkeyPatch, model_path: Path, tmp_path: Path) -> None:
    app = create_app()  # created before the environment is complete: nothing read yet
    no_env.setenv("API_KEY", "from-the-environment")
    no_env.setenv("MODEL_PATH", str(model_path))
    no_env.setenv("PREDICTION_LOG_DIR", str(tmp_path / "logs"))
    with TestClient(app) as client:
        assert client.get("/ready").status_code == 200
        assert (
            client.post(
                "/predict", json=client.get("/example").json(), headers={"x-api-key": "from-the-environment"}
            ).status_code
            == 200
        )


def test_dependency_override_of_settings_is_honoured(make_settings: Callable[..., Settings]) -> None:
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: make_settings(max_batch_size=7)
    with TestClient(app) as client:
        assert client.get("/").json()["limits"]["max_batch_size"] == 7


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "does not exist or is not a file"), (b"\x00garbage", "is not a valid ONNX model")],
)
def test_refuses_an_unusable_model(
    make_settings: Callable[..., Settings], tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StartupError, match=reason) as caught, TestClient(create_app(make_settings(model_path=path))):
        pass
    assert "\n" not in str(caught.value)


# The real thing: what an operator sees when uvicorn refuses to start.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"API_KEY": UNSET}, "Refusing to start: API_KEY is not set"),
        ({"API_KEY": " , "}, "Refusing to start: API_KEY: API_KEY holds no key"),
        ({"MODEL_PATH": "missing.onnx"}, "Refusing to start: model file missing.onnx does not exist"),
        ({"MODEL_PATH": "garbage.onnx"}, "Refusing to start: garbage.onnx is not a valid ONNX model"),
    ],
    ids=["no key", "empty key", "no model", "garbage model"],
)
def test_server_refuses_with_one_line(serve: Callable, tmp_path: Path, env: dict[str, str], reason: str) -> None:
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    server = serve(wait=False, **env)
    code = server.process.wait(timeout=60)
    output = server.output()
    assert code != 0
    refusals = [line for line in output.splitlines() if "Refusing to start" in line]
    assert len(refusals) == 1 and reason in refusals[0], output
    assert "Traceback" not in output
    assert "test-key-0123456789" not in output


@pytest.mark.slow
def test_container_entry_point_serves_and_stops_on_sigterm(serve: Callable, example: dict, api_keys: tuple) -> None:
    server = serve(entry_point=True, LOG_LEVEL="info")  # `python -m inference`, as the image runs it
    response = httpx.post(f"{server.base_url}/predict", json=example, headers={"x-api-key": api_keys[0]}, timeout=30)
    assert response.status_code == 200
    assert server.stop() in (0, -signal.SIGTERM)
    assert "stopped; decision records written out" in server.output()


@pytest.mark.slow
def test_container_entry_point_refuses_without_a_key(serve: Callable) -> None:
    server = serve(entry_point=True, wait=False, API_KEY=UNSET)
    assert server.process.wait(timeout=60) != 0
    assert "Refusing to start: API_KEY is not set" in server.output()
    assert "Traceback" not in server.output()
