"""Settings: read from the environment, keys parsed for rotation and never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from inference.lifespan import settings_problem
from inference.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in ("API_KEY", "MODEL_PATH", "PREDICTION_LOG_DIR", "ORT_INTRA_OP_THREADS", "LOG_LEVEL", "GIT_SHA"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_defaults_and_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_KEY", "k1")
    env.setenv("ORT_INTRA_OP_THREADS", "2")
    env.setenv("LOG_LEVEL", "DEBUG")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.model_path == Path("models/credit_scoring.onnx")
    assert settings.prediction_log_dir == Path("logs")
    assert (settings.ort_intra_op_threads, settings.ort_inter_op_threads) == (2, 1)
    assert settings.log_level == "DEBUG"
    assert settings.max_batch_size == 1000


@pytest.mark.parametrize(("raw", "level"), [("info", "INFO"), ("Warning", "WARNING"), ("DEBUG", "DEBUG")])
def test_log_level_in_any_case(env: pytest.MonkeyPatch, raw: str, level: str) -> None:
    env.setenv("API_KEY", "k1")
    env.setenv("LOG_LEVEL", raw)
    assert Settings().log_level == level  # type: ignore[call-arg]


def test_several_keys_for_rotation(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_KEY", " old-key , new-key,, ")
    keys = Settings().api_keys  # type: ignore[call-arg]
    assert [key.get_secret_value() for key in keys] == ["old-key", "new-key"]
    assert all(isinstance(key, SecretStr) for key in keys)


@pytest.mark.parametrize("raw", [None, "", " , ,"])
def test_a_key_is_required(env: pytest.MonkeyPatch, raw: str | None) -> None:
    if raw is not None:
        env.setenv("API_KEY", raw)
    with pytest.raises(ValidationError) as caught:
        Settings()  # type: ignore[call-arg]
    reason = settings_problem(caught.value)
    assert "API_KEY" in reason
    assert "\n" not in reason


def test_problems_name_the_variable_not_the_value(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_KEY", "s3cret-value")
    env.setenv("ORT_INTRA_OP_THREADS", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()  # type: ignore[call-arg]
    reason = settings_problem(caught.value)
    assert reason.startswith("ORT_INTRA_OP_THREADS: ")
    assert "s3cret-value" not in reason


def test_keys_never_in_repr(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_KEY", "visible-if-leaked,other-secret")
    settings = Settings()  # type: ignore[call-arg]
    shown = repr(settings) + str(settings) + repr(settings.api_keys) + settings.model_dump_json()
    assert "visible-if-leaked" not in shown
    assert "other-secret" not in shown


def test_get_settings_reads_once(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_KEY", "first")
    first = get_settings()
    env.setenv("API_KEY", "second")
    assert get_settings() is first


def test_every_field_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} lacks its docstring"


def test_importing_the_app_needs_no_environment(tmp_path: Path) -> None:
    # Import in a clean interpreter without API_KEY: nothing is read or loaded at import.
    code = "import inference.app as m; assert m.app.state.metrics; print('ok')"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_server_settings_name_a_bad_port_without_a_traceback() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "inference"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Refusing to start: PORT:")
    assert "Traceback" not in result.stderr
