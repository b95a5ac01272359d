"""The model runtime: loads the artifact once, scores like the exported session, refuses bad artifacts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from contract.explain import attribution_bound
from contract.metadata import INPUT_NAME, PROBABILITY_OUTPUT, ModelMetadata
from contract.scorer import ModelLoadError, Scorer
from contract.spec import FeatureSpec


@pytest.fixture(scope="module")
def scorer(model_path: Path) -> Scorer:
    loaded = Scorer(model_path)
    loaded.load()
    return loaded


def test_load_reads_the_artifact_description(scorer: Scorer, metadata: ModelMetadata) -> None:
    assert scorer.ready
    assert scorer.metadata == metadata
    assert scorer.threshold == metadata.threshold
    assert 0.0 < scorer.threshold < 1.0
    assert scorer.encoder.width == len(metadata.feature_spec.model_inputs) == len(metadata.feature_spec) - 1


def test_not_ready_until_loaded_and_after_close(model_path: Path) -> None:
    scorer = Scorer(model_path)
    assert not scorer.ready
    with pytest.raises(RuntimeError):
        scorer.predict_proba(np.zeros((1, 120), dtype=np.float32))
    scorer.load()
    assert scorer.ready
    scorer.close()
    assert not scorer.ready


def test_session_options_favour_single_row_latency(model_path: Path) -> None:
    options = Scorer(model_path).session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.execution_mode.name == "ORT_SEQUENTIAL"
    assert options.graph_optimization_level.name == "ORT_ENABLE_ALL"
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_probabilities_are_one_per_row_in_unit_interval(scorer: Scorer, spec: FeatureSpec) -> None:
    example = spec.example()
    rows = scorer.encoder.encode_many([example, {**example, "EXT_SOURCE_2": None}, {}])
    probabilities = scorer.predict_proba(rows)
    assert probabilities.shape == (3,)
    assert probabilities.dtype == np.float32
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_scores_equal_the_exported_ones_on_the_reference_sample(
    scorer: Scorer, spec: FeatureSpec, reference_sample_path: Path
) -> None:
    import pandas as pd  # test-only: serving never imports pandas

    sample = pd.read_parquet(reference_sample_path)
    raw = sample[spec.names].astype(object)
    applicants = raw.where(raw.notna(), None).to_dict("records")
    probabilities = scorer.predict_proba(scorer.encoder.encode_many(applicants))
    np.testing.assert_allclose(probabilities, sample["probability"].to_numpy(), rtol=0, atol=1e-6)
    assert scorer.decide(probabilities.tolist()) == sample["prediction"].astype(int).tolist()


def test_tuned_session_scores_exactly_like_a_plain_one_thread_session(
    scorer: Scorer, model_path: Path, spec: FeatureSpec, reference_sample_path: Path
) -> None:
    # Exact on one thread. Several intra-op threads sum the trees in another order: up to one
    # float32 ulp (~2e-7) apart, which is why the reference-sample check above uses atol=1e-6.
    import onnxruntime as ort
    import pandas as pd

    raw = pd.read_parquet(reference_sample_path)[spec.names].astype(object)
    rows = scorer.encoder.encode_many(raw.where(raw.notna(), None).to_dict("records"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    plain = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    expected = plain.run([PROBABILITY_OUTPUT], {INPUT_NAME: rows})[0][:, 1]
    np.testing.assert_array_equal(scorer.predict_proba(rows), expected)
    # One row at a time (the /predict path) gives the very same numbers as the batch.
    singles = [scorer.predict_proba(rows[i : i + 1])[0] for i in range(0, len(rows), 97)]
    np.testing.assert_array_equal(singles, expected[::97])


def test_decide_at_the_business_threshold(scorer: Scorer) -> None:
    t = scorer.threshold
    assert scorer.decide([0.0, t - 1e-9, t, t + 1e-9, 1.0]) == [0, 0, 1, 1, 1]


def test_decide_many_compares_float32_scores_in_float64(scorer: Scorer) -> None:
    t = scorer.threshold
    # The float32 scores around the threshold: compared in float32, the nearest would round onto it.
    near = np.float32(t)
    scores = np.array(
        [0.0, np.nextafter(near, np.float32(0)), near, np.nextafter(near, np.float32(1)), 1.0], np.float32
    )
    decided = scorer.decide_many(scores)
    assert decided.dtype == np.int32
    assert decided.tolist() == scorer.decide(scores.tolist()) == [int(float(p) >= t) for p in scores]


# Broken artifacts: each refused with a one-line reason naming the file.


def _altered(model_path: Path, tmp_path: Path, change: Callable[[onnx.ModelProto], None]) -> Path:
    model = onnx.load(str(model_path))
    change(model)
    path = tmp_path / "altered.onnx"
    onnx.save(model, str(path))
    return path


def _set_meta(model: onnx.ModelProto, key: str, value: str | None) -> None:
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    for k, v in kept + ([(key, value)] if value is not None else []):
        prop = model.metadata_props.add()
        prop.key, prop.value = k, v


def _rename_input(model: onnx.ModelProto) -> None:
    model.graph.input[0].name = "features"
    for node in model.graph.node:
        node.input[:] = ["features" if name == INPUT_NAME else name for name in node.input]


def _rename_output(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        node.output[:] = ["renamed_probabilities" if name == PROBABILITY_OUTPUT else name for name in node.output]
        node.input[:] = ["renamed_probabilities" if name == PROBABILITY_OUTPUT else name for name in node.input]
    for output in model.graph.output:
        if output.name == PROBABILITY_OUTPUT:
            output.name = "renamed_probabilities"


def _drop_a_feature(model: onnx.ModelProto) -> None:
    spec = json.loads(next(p.value for p in model.metadata_props if p.key == "feature_spec"))
    _set_meta(model, "feature_spec", json.dumps(spec[:-1]))


BROKEN: dict[str, tuple[Callable[[onnx.ModelProto], None], str]] = {
    "no feature spec": (lambda m: _set_meta(m, "feature_spec", None), "lacks the key 'feature_spec'"),
    "bad threshold": (lambda m: _set_meta(m, "threshold", "high"), "does not parse"),
    "renamed input": (_rename_input, "expected one input named 'input'"),
    "renamed output": (_rename_output, "no output named 'probabilities'"),
    # 120 fields, one protected: 118 model inputs left for an input of width 119.
    "spec narrower than input": (_drop_a_feature, "expected tensor(float) [N, 118] for the 118 model inputs"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_artifact_breaking_the_contract_is_refused(model_path: Path, tmp_path: Path, case: str) -> None:
    change, expected = BROKEN[case]
    path = _altered(model_path, tmp_path, change)
    with pytest.raises(ModelLoadError) as caught:
        Scorer(path).load()
    reason = str(caught.value)
    assert expected in reason
    assert str(path) in reason
    assert "\n" not in reason


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", "truncated"])
def test_unreadable_artifact_is_refused(model_path: Path, tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "broken.onnx"
    data = model_path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else content)  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError) as caught:
        Scorer(path).load()
    assert "is not a valid ONNX model" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("make_path", [lambda tmp: tmp / "absent.onnx", lambda tmp: tmp])
def test_missing_artifact_is_refused(tmp_path: Path, make_path: Callable[[Path], Path]) -> None:
    with pytest.raises(ModelLoadError, match="does not exist or is not a file"):
        Scorer(make_path(tmp_path)).load()


@pytest.mark.parametrize("threshold", [0.0919034704243819, 0.5, 1 / 3, float(np.float32(0.25)), 1e-9])
def test_the_attribution_bound_in_float32_refuses_exactly_what_the_threshold_does(threshold: float) -> None:
    """The graph selects the rows to explain in float32: for every float32 probability around the
    threshold, `p >= bound` must be the decision's float64 `p >= threshold`."""
    bound = attribution_bound(threshold)
    assert bound.dtype == np.float32 and bound.shape == ()
    centre = np.float32(threshold)
    around = [centre]
    for direction in (np.float32(np.inf), np.float32(-np.inf)):
        value = centre
        for _ in range(4):
            value = np.nextafter(value, direction)
            around.append(value)
    probabilities = np.array(around, np.float32)
    assert np.array_equal(probabilities >= bound, probabilities.astype(np.float64) >= threshold)
    assert (probabilities >= bound).any() and not (probabilities >= bound).all()
