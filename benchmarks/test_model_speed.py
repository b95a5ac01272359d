"""Model-only speed: MLflow pyfunc vs scikit-learn pipeline vs LightGBM Booster vs the served ONNX path.

Groups `single` (one applicant per call, cycling through the held-out rows) and `batch1000`.
Each benchmark also checks its probabilities against the pipeline's (parity limit 1e-5), so a
fast but wrong path fails. Ratios between the medians: `python -m benchmarks.report`.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import N_ROWS, TOLERANCE, ModelPaths, Served, batch_paths, cycling, single_row_paths

PATHS = ["pyfunc", "pipeline", "booster", "served", "ort-only"]


@pytest.mark.parametrize("path", PATHS)
def test_single(benchmark, paths: ModelPaths, path: str) -> None:
    benchmark.group = "single"
    benchmark.extra_info.update(rows=1, n_trees=paths.n_trees(), model=paths.model.kind)
    call = cycling(single_row_paths(paths)[path], N_ROWS)
    row, probability = benchmark(call)
    assert abs(probability - paths.expected[row]) <= TOLERANCE


@pytest.mark.parametrize("path", PATHS)
def test_batch1000(benchmark, paths: ModelPaths, path: str) -> None:
    benchmark.group = "batch1000"
    benchmark.extra_info.update(rows=N_ROWS, n_trees=paths.n_trees(), model=paths.model.kind)
    probabilities = benchmark(batch_paths(paths)[path])
    assert probabilities.shape == (N_ROWS,)
    assert np.max(np.abs(probabilities - paths.expected)) <= TOLERANCE


def test_every_path_scores_alike_row_by_row(paths: ModelPaths, served: Served) -> None:
    """Not timed: rows one at a time through every path (50 for the DataFrame paths, which take
    milliseconds each, 1,000 for the others); the served path also matches the ONNX scores the
    export stored in the reference sample."""
    scorers = single_row_paths(paths)
    for name, score in scorers.items():
        n = 50 if name in ("pyfunc", "pipeline") else N_ROWS
        got = np.array([score(i) for i in range(n)])
        assert np.max(np.abs(got - paths.expected[:n])) <= TOLERANCE, name
    got = np.array([scorers["served"](i) for i in range(N_ROWS)])
    assert np.max(np.abs(got - served.stored)) <= 1e-6
