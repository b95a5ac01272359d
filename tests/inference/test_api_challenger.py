"""A challenger scored in shadow on the same applicants: recorded, never answered, never a failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from inference.app import create_app
from inference.settings import Settings
from tests.conftest import challenger_copy

Records = Callable[[Path], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def challenger_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion's graph under another version and a stricter threshold: same scores,
    different decisions for the applicants in between."""
    return challenger_copy(model_path, tmp_path_factory.mktemp("challenger"), threshold_factor=3)


def test_the_challenger_is_scored_recorded_and_never_answered(
    make_settings: Callable[..., Settings],
    challenger_path: Path,
    example: dict[str, Any],
    auth: dict[str, str],
    log_dir: Path,
    read_records: Records,
) -> None:
    with TestClient(create_app(make_settings(challenger_model_path=challenger_path))) as client:
        info = client.get("/").json()
        single = client.post("/predict", json=example, headers=auth).json()
        batch = client.post("/predict/batch", json={"applicants": [example, example]}, headers=auth).json()
    assert info["challenger"]["version"] == "challenger-7"
    assert info["model"]["version"] != "challenger-7"
    assert not any(key.startswith("challenger") for key in single)
    assert not any(key.startswith("challenger") for item in batch["predictions"] for key in item)
    records = read_records(log_dir)
    assert len(records) == 3
    for record in records:
        assert record["challenger_version"] == "challenger-7"
        assert record["challenger_probability"] == record["probability"]  # the same graph
        strict = record["threshold"] * 3
        assert record["challenger_prediction"] == int(record["challenger_probability"] >= strict)


def test_a_failing_challenger_never_fails_a_request(
    make_settings: Callable[..., Settings],
    challenger_path: Path,
    example: dict[str, Any],
    auth: dict[str, str],
    log_dir: Path,
    read_records: Records,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(make_settings(challenger_model_path=challenger_path))
    with TestClient(app) as client:
        challenger = app.state.loaded.service.challenger

        def broken(rows: np.ndarray) -> np.ndarray:
            raise RuntimeError("challenger fell over")

        monkeypatch.setattr(challenger.scorer, "predict_proba", broken)
        responses = [client.post("/predict", json=example, headers=auth) for _ in range(3)]
        metrics = client.get("/metrics").text
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "challenger_failures_total 3.0" in metrics
    assert all("challenger_version" not in r for r in read_records(log_dir))


def test_an_unreadable_challenger_leaves_the_champion_serving(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    example: dict[str, Any],
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = tmp_path / "not-a-model.onnx"
    broken.write_bytes(b"garbage")
    with TestClient(create_app(make_settings(challenger_model_path=broken))) as client:
        assert client.get("/").json()["challenger"] is None
        assert client.post("/predict", json=example, headers=auth).status_code == 200
    assert "challenger not loaded" in caplog.text
