"""Model tests for the serve-time explainer: exact against LightGBM, additive, reasons that read right.

Most run on the small model trained and exported once per session (tests/small_model.py);
the protected-attribute test also runs on the committed artifact.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnx.numpy_helper
import orjson
import pytest

import export.run as export_run
from contract.encoding import RowEncoder
from contract.explain import Explainer, ExplainerUnavailable, _largest, pack_arrays, unpack_arrays
from contract.metadata import ATTRIBUTED_ROWS_OUTPUT, ATTRIBUTION_THRESHOLD_INPUT
from contract.scorer import Scorer
from export.explanation import ExplanationError, log_odds
from export.parity import records
from export.shap_graph import remove_attributions
from export.treeshap import explainer_payload
from tests.contract import reasons_golden
from tests.small_model import MODEL_URI, Trained
from training.pipeline import build_preprocessing
from training.schema import TARGET_COLUMN, build_feature_spec
from training.synthetic import generate


@pytest.fixture(scope="module")
def scorer(trained: Trained) -> Scorer:
    loaded = Scorer(trained.export.artifact)
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def explainer(scorer: Scorer) -> Explainer:
    return Explainer.from_metadata(scorer.metadata)


@pytest.fixture(scope="module")
def unseen(scorer: Scorer) -> tuple[list[dict], np.ndarray]:
    spec = scorer.metadata.feature_spec
    applicants = records(generate(3_000, seed=77), spec)
    return applicants, scorer.encoder.encode_many(applicants)


def test_attributions_equal_lightgbms_pred_contrib(trained: Trained, explainer: Explainer, unseen) -> None:
    applicants, rows = unseen
    pipeline = trained.result.pipeline
    frame = generate(3_000, seed=77)
    expected = pipeline.named_steps["model"].predict(pipeline[:-1].transform(frame), pred_contrib=True)
    base, contributions = explainer.explain(rows)
    assert contributions.shape == (len(rows), explainer.n_features) == (len(rows), expected.shape[1] - 1)
    assert np.max(np.abs(contributions - expected[:, :-1])) < 1e-9
    assert np.max(np.abs(base - expected[:, -1])) < 1e-9
    assert explainer.feature_names == list(pipeline[:-1].get_feature_names_out())


def test_base_plus_contributions_is_the_served_log_odds(scorer: Scorer, explainer: Explainer, unseen) -> None:
    _, rows = unseen
    base, contributions = explainer.explain(rows)
    served = log_odds(scorer.predict_proba(rows))
    assert np.max(np.abs(base + contributions.sum(axis=1) - served)) < 1e-5
    # One row at a time gives the very same values as the batch.
    for i in (0, 17, 2_999):
        assert np.array_equal(explainer.explain(rows[i : i + 1])[1][0], contributions[i])


def test_reasons_are_the_largest_positive_contributions_in_order(scorer: Scorer, explainer: Explainer, unseen) -> None:
    _, rows = unseen
    probabilities = scorer.predict_proba(rows)
    refused = rows[probabilities >= scorer.threshold]
    assert len(refused) > 100
    _, contributions = explainer.explain(refused)
    for k in (1, 4, 10):
        for reasons, row in zip(explainer.reasons(refused, contributions, k), contributions, strict=True):
            values = [r["contribution"] for r in reasons]
            assert values == sorted(values, reverse=True) and all(v > 0 for v in values)
            top = sorted((c for c in row if c > 0), reverse=True)[:k]
            assert values == top
            assert [explainer.feature_names.index(r["feature"]) for r in reasons] == [
                int(np.flatnonzero(row == v)[0]) for v in values
            ]
            assert all(set(r) == {"feature", "fields", "value", "contribution", "text"} for r in reasons)
    with pytest.raises(ValueError, match="between 1 and 10"):
        explainer.reasons(refused[:1], contributions[:1], 11)


def test_the_graph_computes_the_explainers_attributions_in_the_scoring_run(
    scorer: Scorer, explainer: Explainer, unseen
) -> None:
    """The exported graph's TreeSHAP (float32 out of float64 sums) is the NumPy explainer's within
    float32 rounding; its top features are the largest contributions, ties by lower index; its
    model features are the explainer's; and it gives the reasons the NumPy path gives."""
    _, rows = unseen
    assert scorer.attributes
    probabilities, attributions = scorer.predict_attributed(rows, every=True)
    assert attributions is not None
    assert np.array_equal(attributions.rows, np.arange(len(rows)))
    assert np.array_equal(probabilities, scorer.predict_proba(rows))
    _, contributions = explainer.explain(rows)
    assert attributions.contributions.dtype == np.float32
    assert np.max(np.abs(attributions.contributions - contributions)) < 1e-6
    assert np.array_equal(attributions.top, _largest(attributions.contributions.astype(np.float64), 10))
    assert np.array_equal(attributions.features, explainer.model_features(rows), equal_nan=True)
    predictions = (probabilities >= scorer.threshold).astype(int)
    _, as_served = scorer.predict_attributed(rows)  # the refused rows only, as the API and the job ask
    assert as_served is not None
    assert np.array_equal(as_served.rows, np.flatnonzero(predictions == 1))
    assert np.array_equal(as_served.contributions, attributions.contributions[as_served.rows])
    from_graph = explainer.refusal_reasons(rows, predictions, 4, as_served)
    assert from_graph == explainer.refusal_reasons(rows, predictions, 4, attributions)
    from_numpy = explainer.refusal_reasons(rows, predictions, 4)
    assert sum(r is not None for r in from_graph) > 100
    for graph_reasons, numpy_reasons in zip(from_graph, from_numpy, strict=True):
        if graph_reasons is None:
            assert numpy_reasons is None
            continue
        assert numpy_reasons is not None
        strip = [{**r, "contribution": None} for r in graph_reasons]
        assert strip == [{**r, "contribution": None} for r in numpy_reasons]
        assert np.allclose([r["contribution"] for r in graph_reasons], [r["contribution"] for r in numpy_reasons])


def test_the_graph_attributes_the_rows_it_is_asked_for_and_no_others(scorer: Scorer, unseen) -> None:
    """Scoring alone attributes nothing; rows at the threshold exactly are refused, hence attributed;
    asking reasons of a row the graph did not attribute is an error, not a silent wrong answer."""
    _, rows = unseen
    probabilities = scorer.predict_proba(rows)
    session = scorer._session
    assert session is not None
    feeds = {"input": rows, **scorer._attribute_none}
    (none,) = session.run([ATTRIBUTED_ROWS_OUTPUT], feeds)
    assert none.shape == (1, 0)
    at = probabilities[7]  # the threshold equal to a row's probability: that row is refused
    (selected,) = session.run([ATTRIBUTED_ROWS_OUTPUT], {"input": rows, ATTRIBUTION_THRESHOLD_INPUT: np.array(at)})
    assert 7 in selected[0]
    assert np.array_equal(selected[0], np.flatnonzero(probabilities >= at))
    _, attributions = scorer.predict_attributed(rows)
    assert attributions is not None
    accepted = np.flatnonzero(probabilities < scorer.threshold)
    with pytest.raises(ValueError, match="did not attribute"):
        attributions.of(accepted[:3])


def test_an_artifact_without_the_attribution_outputs_still_gives_reasons(
    trained: Trained, scorer: Scorer, tmp_path: Path
) -> None:
    """Artifacts exported before the graph computed TreeSHAP: the explainer computes it in NumPy."""
    model = onnx.load(trained.export.artifact)
    remove_attributions(model)
    assert not [n for n in model.graph.node if n.name == "treeshap"]
    old = tmp_path / "old.onnx"
    onnx.save(model, old)
    current = scorer
    scorer = Scorer(old)
    scorer.load()
    assert not scorer.attributes
    explainer = Explainer.from_metadata(scorer.metadata)
    rows = scorer.encoder.encode_many(records(generate(200, seed=5), scorer.metadata.feature_spec))
    probabilities, attributions = scorer.predict_attributed(rows)
    assert attributions is None
    predictions = (probabilities >= scorer.threshold).astype(int)
    assert 1 in predictions
    old_reasons = explainer.refusal_reasons(rows, predictions, 4, attributions)
    _, graph = current.predict_attributed(rows)
    new_reasons = explainer.refusal_reasons(rows, predictions, 4, graph)
    for old_given, new_given in zip(old_reasons, new_reasons, strict=True):
        assert (old_given is None) == (new_given is None)
        if old_given is not None and new_given is not None:
            assert [r["text"] for r in old_given] == [r["text"] for r in new_given]
            assert np.allclose([r["contribution"] for r in old_given], [r["contribution"] for r in new_given])


def test_reasons_name_raw_fields_and_read_like_a_letter(scorer: Scorer, explainer: Explainer, unseen) -> None:
    applicants, rows = unseen
    spec = scorer.metadata.feature_spec
    _, contributions = explainer.explain(rows)
    reasons = [r for row in explainer.reasons(rows, contributions, 10) for r in row]
    by_feature = {r["feature"]: r for r in reasons}
    # Engineered features are reasons named by the raw fields they come from.
    ratios = explainer.engineering.ratios
    engineered = [r for r in reasons if r["feature"] in ratios]
    assert engineered, "no ratio ever pushed towards refusal"
    for r in engineered:
        assert r["fields"] == list(ratios[r["feature"]])
        assert (
            re.fullmatch(r"[A-Z][\w ']+ is (high|low|short|long) relative to [a-z][\w ']+", r["text"])
            or r["value"] is None
        ), r
    readable = {r["text"] for r in engineered}
    assert readable & {
        "Annuity is high relative to income",
        "Annuity is low relative to income",
        "Credit amount is high relative to income",
        "Credit amount is low relative to income",
        "Annuity is high relative to credit amount",
        "Annuity is low relative to credit amount",
        "Price of the goods is low relative to credit amount",
        "Price of the goods is high relative to credit amount",
        "Time in current job is short relative to age",
        "Time in current job is long relative to age",
    }
    # A categorical reason carries the level the client sent.
    categorical = [r for r in reasons if r["feature"] in spec.categorical_names and r["value"] is not None]
    assert categorical
    for r in categorical:
        assert r["value"] in spec[r["feature"]].levels and r["text"].endswith(f": {r['value']}")
    assert "EXT_SOURCE_3" in by_feature
    # No protected attribute is ever a reason.
    assert not {r["feature"] for r in reasons} & set(spec.protected_names)


def test_a_missing_external_score_is_a_reason(scorer: Scorer, explainer: Explainer) -> None:
    spec = scorer.metadata.feature_spec
    applicants = records(generate(2_000, seed=8), spec)
    for applicant in applicants:
        applicant["EXT_SOURCE_3"] = None
    rows = scorer.encoder.encode_many(applicants)
    _, contributions = explainer.explain(rows)
    missing = [r for row in explainer.reasons(rows, contributions, 10) for r in row if r["feature"] == "EXT_SOURCE_3"]
    assert missing, "a missing EXT_SOURCE_3 never pushed towards refusal"
    assert all(r["value"] is None and r["text"] == "External score 3 not provided" for r in missing)


def test_attribution_vector_for_explain_true(explainer: Explainer, unseen) -> None:
    _, rows = unseen
    base, contributions = explainer.explain(rows[:1])
    vector = explainer.attribution(contributions[0])
    assert vector["base_value"] == base
    assert list(vector["contributions"]) == explainer.feature_names
    assert sum(vector["contributions"].values()) == pytest.approx(float(contributions[0].sum()), abs=1e-12)


@pytest.mark.parametrize("artifact", ["small", "committed"])
def test_a_protected_field_change_leaves_the_probability_bit_identical(
    artifact: str, trained: Trained, model_path: Path
) -> None:
    scorer = Scorer(trained.export.artifact if artifact == "small" else model_path)
    scorer.load()
    spec = scorer.metadata.feature_spec
    assert spec.protected_names == ["CODE_GENDER"] and "CODE_GENDER" in spec.names
    assert scorer.encoder.width == len(spec.model_inputs) == len(spec) - 1
    applicants = records(generate(500, seed=3), spec)
    as_women = [{**a, "CODE_GENDER": "F"} for a in applicants]
    as_men = [{**a, "CODE_GENDER": "M"} for a in applicants]
    p_women = scorer.predict_proba(scorer.encoder.encode_many(as_women))
    p_men = scorer.predict_proba(scorer.encoder.encode_many(as_men))
    assert p_women.tobytes() == p_men.tobytes()
    # The non-protected fields do move it: the model is not a constant.
    richer = [{**a, "EXT_SOURCE_2": 0.8} for a in as_women]
    assert not np.array_equal(p_women, scorer.predict_proba(scorer.encoder.encode_many(richer)))


@pytest.mark.parametrize(
    ("params", "missing_type"),
    [({}, "NaN"), ({"zero_as_missing": True}, "Zero"), ({"use_missing": False}, "None")],
    ids=["nan-missing", "zero-as-missing", "no-missing"],
)
def test_lightgbm_missing_value_rules_are_followed(params: dict, missing_type: str) -> None:
    spec = build_feature_spec()
    frame = generate(6_000, seed=4)
    preprocessing = build_preprocessing(spec)
    features = preprocessing.fit_transform(frame)
    model = lgb.LGBMClassifier(n_estimators=25, num_leaves=7, min_child_samples=20, verbose=-1, n_jobs=1, **params)
    model.fit(features, frame[TARGET_COLUMN])
    missing_types = {
        node.get("missing_type")
        for tree in model.booster_.dump_model()["tree_info"]
        for node in _internal_nodes(tree["tree_structure"])
    }
    assert missing_type in missing_types
    engineering = preprocessing.named_steps["engineer"].engineering
    explainer = Explainer(explainer_payload(model, engineering, np.zeros(len(engineering.feature_names))), spec)
    test = generate(2_000, seed=5)
    applicants = records(test, spec)
    for i, applicant in enumerate(applicants[:600]):  # zeros and blanks where the trees split on them
        applicant["EXT_SOURCE_3"] = None if i % 2 else applicant["EXT_SOURCE_3"]
        applicant["AMT_REQ_CREDIT_BUREAU_YEAR"] = 0.0 if i % 3 else None
    rows = RowEncoder(spec).encode_many(applicants)
    expected = model.predict(engineering.transform(rows), pred_contrib=True)
    base, contributions = explainer.explain(rows)
    assert np.max(np.abs(contributions - expected[:, :-1])) < 1e-9
    assert np.max(np.abs(base - expected[:, -1])) < 1e-9


def test_export_refuses_a_tampered_attribution_table_and_writes_nothing(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_payload = export_run.explainer_payload

    def tampered(*args, **kwargs):  # type: ignore[no-untyped-def]
        payload = real_payload(*args, **kwargs)
        arrays = unpack_arrays(payload["arrays"])
        arrays["table"][3, 5, 0] += 0.01  # one pattern of one tree, one feature
        return {**payload, "arrays": pack_arrays(arrays)}

    monkeypatch.setattr(export_run, "explainer_payload", tampered)
    out = tmp_path / "models"
    with pytest.raises(ExplanationError, match="refused, nothing written"):
        export_run.export_model(MODEL_URI, out, parity_rows=3_000, tracking_uri=trained.tracking_uri)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("tamper", ["leaf weight", "split bound"])
def test_export_refuses_a_tampered_attribution_graph_and_writes_nothing(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    """The proof checks the graph's own attributions: the metadata tables are intact here, one value
    of the graph's TreeSHAP node is not."""
    real_add = export_run.add_attributions

    def tampered(model, explainer, threshold):  # type: ignore[no-untyped-def]
        real_add(model, explainer, threshold)
        (node,) = [n for n in model.graph.node if n.name == "treeshap"]
        attrs = {a.name: a for a in node.attribute}
        if tamper == "leaf weight":
            tensor = attrs["target_weights_as_tensor"].t
            weights = onnx.numpy_helper.to_array(tensor).copy()
            # Tree 0's share to its first feature, in every pattern (many patterns no row reaches).
            trees, features = np.array(attrs["target_treeids"].ints), np.array(attrs["target_ids"].ints)
            weights[(trees == 0) & (features == features[0])] += 0.01
        else:  # a split moves past the values rows take: every row of that tree changes pattern
            tensor = attrs["nodes_values_as_tensor"].t
            weights = onnx.numpy_helper.to_array(tensor).copy()
            weights[0] = -weights[0] if np.isfinite(weights[0]) and weights[0] != 0 else 1e30
        tensor.CopyFrom(onnx.numpy_helper.from_array(weights, tensor.name))

    monkeypatch.setattr(export_run, "add_attributions", tampered)
    out = tmp_path / "models"
    with pytest.raises(ExplanationError, match="refused, nothing written"):
        export_run.export_model(MODEL_URI, out, parity_rows=3_000, tracking_uri=trained.tracking_uri)
    assert not out.exists() or not any(out.iterdir())


def test_an_artifact_without_explainer_says_so(scorer: Scorer) -> None:
    from dataclasses import replace

    with pytest.raises(ExplainerUnavailable, match="no explainer"):
        Explainer.from_metadata(replace(scorer.metadata, explainer={}))
    with pytest.raises(ExplainerUnavailable, match="does not parse"):
        Explainer.from_metadata(replace(scorer.metadata, explainer={**scorer.metadata.explainer, "arrays": "xx"}))


def _internal_nodes(node: dict):  # type: ignore[no-untyped-def]
    if "split_feature" in node:
        yield node
        yield from _internal_nodes(node["left_child"])
        yield from _internal_nodes(node["right_child"])


def test_the_not_employed_placeholder_reads_as_such(scorer: Scorer, explainer: Explainer) -> None:
    spec = scorer.metadata.feature_spec
    applicants = records(generate(3_000, seed=9), spec)
    for applicant in applicants:
        applicant["DAYS_EMPLOYED"] = 365243  # "not employed" (pensioners), NaN plus a flag for the trees
    rows = scorer.encoder.encode_many(applicants)
    _, contributions = explainer.explain(rows)
    reasons = [r for row in explainer.reasons(rows, contributions, 10) for r in row if "DAYS_EMPLOYED" in r["fields"]]
    assert reasons, "employment never pushed towards refusal"
    for r in reasons:
        assert r["text"] == "Not in employment (pensioner or unemployed)", r
        if r["feature"] == "DAYS_EMPLOYED":
            assert r["value"] == 365243
    texts = {r["text"] for row in explainer.reasons(rows, contributions, 10) for r in row}
    assert not any("not provided" in t and "job" in t for t in texts)


def test_export_refuses_a_graph_attributing_other_rows_than_the_refused_and_writes_nothing(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph's own row selection is proven too: a default threshold off the decision's would
    leave some refusals without reasons (or explain accepted applicants) as served."""
    real_add = export_run.add_attributions
    monkeypatch.setattr(
        export_run, "add_attributions", lambda model, explainer, threshold: real_add(model, explainer, threshold * 1.05)
    )
    out = tmp_path / "models"
    with pytest.raises(ExplanationError, match=r"refused, nothing written.* [1-9][\d,]* rows attributed otherwise"):
        export_run.export_model(MODEL_URI, out, parity_rows=3_000, tracking_uri=trained.tracking_uri)
    assert not out.exists() or not any(out.iterdir())


def test_reasons_and_attributions_stay_byte_identical(model_path: Path) -> None:
    """The committed artifact's reasons and attributions for fixed applicants (refused, accepted,
    edited where the wording branches), as `tests/contract/reasons_golden.json` recorded them."""
    golden = reasons_golden.load()
    scorer = Scorer(model_path)
    scorer.load()
    if scorer.metadata.mlflow_run_id != golden["artifact_run_id"]:
        pytest.fail(
            f"{reasons_golden.GOLDEN.name} was written for run {golden['artifact_run_id']}, the artifact is "
            f"{scorer.metadata.mlflow_run_id}: after a re-export, `python -m tests.contract.reasons_golden`"
        )
    got = reasons_golden.outputs(scorer, Explainer.from_metadata(scorer.metadata), golden["applicants"])
    assert set(got) == set(golden["expected"])
    for name, expected in golden["expected"].items():
        for i, (mine, theirs) in enumerate(zip(got[name], expected, strict=True)):
            assert orjson.dumps(mine) == orjson.dumps(theirs), f"{name}, applicant {i}"


@pytest.mark.parametrize("n", [1, 2, 300])
def test_the_largest_contributions_are_chosen_as_a_stable_sort_would(n: int) -> None:
    """Reasons are chosen by partition, not a full sort: the same columns in the same order,
    ties (few distinct values, so many across the k-th place) broken by the lower column."""
    rng = np.random.default_rng(n)
    for distinct in (3, 12, 10_000):
        values = rng.integers(-distinct, distinct, size=(n, 125)).astype(np.float64) / 7
        for k in (1, 4, 10, 125):
            assert np.array_equal(_largest(values, k), np.argsort(-values, axis=1, kind="stable")[:, :k]), (distinct, k)
