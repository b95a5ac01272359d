"""Fixtures for the model-speed benchmarks: one model, reached by every path, on the same held-out rows.

The paths (see `benchmarks/models.py` for which model):
- `pyfunc`:   the MLflow pyfunc model loaded from the registry, on a one-row DataFrame (schema
              enforcement included, as `mlflow models serve` does);
- `pipeline`: the scikit-learn pipeline inside it (`mlflow.sklearn.load_model`), same DataFrame;
- `booster`:  its LightGBM Booster on the already engineered float row, one thread (the model
              alone: no DataFrame, no feature pipeline);
- `served`:   what the API does once the body is validated: request dict -> `RowEncoder` ->
              onnxruntime through `contract.scorer.Scorer` (its session options, its thread count).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from benchmarks.machine import code_fingerprint, versions
from benchmarks.models import BenchModel, held_out_rows, resolve
from contract.scorer import Scorer
from contract.spec import FeatureSpec
from export.parity import records

N_ROWS = 1_000  # the batch size, and the rows the single-row benchmarks cycle through
TOLERANCE = 1e-5  # the export's parity limit: every path must agree with the pipeline within it

_session_model: dict[str, Any] = {}


@dataclass
class ModelPaths:
    model: BenchModel
    spec: FeatureSpec
    frame: pd.DataFrame  # N_ROWS held-out rows, the spec's columns, real dtypes
    one_row_frames: list[pd.DataFrame]  # the same rows as one-row DataFrames (made once, not timed)
    dicts: list[dict[str, Any]]  # the same rows as validated request dicts
    engineered: np.ndarray  # the same rows after the feature pipeline: the booster's input
    encoded: np.ndarray  # the same rows as the ONNX input (RowEncoder output)
    pyfunc: Any
    pipeline: Any
    booster: Any
    scorer: Scorer
    expected: np.ndarray  # the pipeline's probabilities on `frame`, the reference for every path

    def n_trees(self) -> int:
        return int(self.booster.best_iteration or self.booster.num_trees())


@pytest.fixture(scope="session")
def bench_model(tmp_path_factory: pytest.TempPathFactory) -> BenchModel:
    model = resolve(tmp_path_factory.mktemp("bench-model"))
    _session_model["model"] = model.describe()
    _session_model["kind"] = model.kind
    return model


@dataclass
class Served:
    """The served artifact and the held-out rows as the API receives them."""

    model: BenchModel
    scorer: Scorer
    spec: FeatureSpec
    frame: pd.DataFrame  # N_ROWS held-out rows, the spec's columns, real dtypes
    dicts: list[dict[str, Any]]  # the same rows as validated request dicts
    bodies: list[bytes]  # the same rows as POST /predict bodies
    stored: np.ndarray  # the ONNX probabilities the export stored with these rows


@pytest.fixture(scope="session")
def served(bench_model: BenchModel) -> Served:
    scorer = Scorer(bench_model.artifact)
    scorer.load()
    spec = scorer.metadata.feature_spec
    rows = held_out_rows(bench_model, N_ROWS)
    frame = rows[spec.names]
    dicts = records(frame, spec)
    return Served(
        bench_model, scorer, spec, frame, dicts, [orjson.dumps(d) for d in dicts], rows["probability"].to_numpy()
    )


@pytest.fixture(scope="session")
def paths(bench_model: BenchModel, served: Served) -> ModelPaths:
    import mlflow

    scorer, spec, frame, dicts = served.scorer, served.spec, served.frame, served.dicts
    mlflow.set_tracking_uri(bench_model.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(bench_model.model_uri)
    pipeline = mlflow.sklearn.load_model(bench_model.model_uri)
    booster = pipeline.named_steps["model"].booster_
    preprocessing = pipeline[:-1]
    paths = ModelPaths(
        model=bench_model,
        spec=spec,
        frame=frame,
        one_row_frames=[frame.iloc[[i]] for i in range(N_ROWS)],
        dicts=dicts,
        engineered=np.ascontiguousarray(preprocessing.transform(frame)),
        encoded=scorer.encoder.encode_many(dicts),
        pyfunc=pyfunc,
        pipeline=pipeline,
        booster=booster,
        scorer=scorer,
        expected=pipeline.predict_proba(frame)[:, 1],
    )
    _session_model["n_trees"] = paths.n_trees()
    _session_model["rows"] = N_ROWS
    return paths


def single_row_paths(p: ModelPaths) -> dict[str, Callable[[int], float]]:
    """Row index -> probability of default, one applicant at a time, for each path."""
    scorer, encoder = p.scorer, p.scorer.encoder
    frames, dicts, engineered, encoded = p.one_row_frames, p.dicts, p.engineered, p.encoded
    rows = [engineered[i : i + 1] for i in range(len(engineered))]  # views made once, not timed
    onnx_rows = [encoded[i : i + 1] for i in range(len(encoded))]
    return {
        "pyfunc": lambda i: float(np.asarray(p.pyfunc.predict(frames[i]))[0, 1]),
        "pipeline": lambda i: float(p.pipeline.predict_proba(frames[i])[0, 1]),
        "booster": lambda i: float(p.booster.predict(rows[i], num_threads=1)[0]),
        "served": lambda i: float(scorer.predict_proba(encoder.encode_one(dicts[i]))[0]),
        # Not a path of its own: the ONNX call alone, to split `served` into encoding and model.
        "ort-only": lambda i: float(scorer.predict_proba(onnx_rows[i])[0]),
    }


def batch_paths(p: ModelPaths) -> dict[str, Callable[[], np.ndarray]]:
    """All N_ROWS applicants in one call, for each path."""
    scorer, encoder = p.scorer, p.scorer.encoder
    return {
        "pyfunc": lambda: np.asarray(p.pyfunc.predict(p.frame))[:, 1],
        "pipeline": lambda: p.pipeline.predict_proba(p.frame)[:, 1],
        "booster": lambda: p.booster.predict(p.engineered, num_threads=1),
        "served": lambda: scorer.predict_proba(encoder.encode_many(p.dicts)),
        "ort-only": lambda: scorer.predict_proba(p.encoded),
    }


def cycling(score: Callable[[int], float], n: int) -> Callable[[], tuple[int, float]]:
    """A zero-argument call that scores the next row each time, returning (row, probability)."""
    state = [-1]

    def call() -> tuple[int, float]:
        i = state[0] = (state[0] + 1) % n
        return i, score(i)

    return call


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]) -> None:
    """Say in the saved JSON which model was measured (the quick one in CI, the project's in `make bench`),
    and drop the raw timings (tens of MB in a full run): the statistics stay."""
    for bench in output_json.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)
    output_json["bench_model"] = dict(_session_model)
    output_json["code"] = code_fingerprint()
    output_json["versions"] = versions()


@pytest.fixture()
def wrk() -> str:
    """wrk's path, for the tests that load a server over HTTP; where it is missing they fail, never skip."""
    path = shutil.which("wrk")
    if path is None:
        pytest.fail("wrk is not installed (apt-get install wrk; .ci/run does)")
    return path
