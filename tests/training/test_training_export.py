"""Model tests: a small end-to-end train -> register -> export run, parity, and refusals."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import export.run as export_run
from contract.metadata import ModelMetadata
from export.__main__ import main as export_main
from export.parity import ParityError, compare, onnx_probabilities, records
from tests.small_model import Trained
from training.__main__ import main as train_main
from training.fairness import age_bands
from training.schema import build_feature_spec
from training.synthetic import generate
from training.threshold import best_threshold, business_cost
from training.train import CHAMPION_ALIAS, MODEL_NAME

SPEC = build_feature_spec()


def test_training_logs_metrics_and_registers_the_champion(trained: Trained) -> None:
    mlflow.set_tracking_uri(trained.tracking_uri)
    version = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    assert version.run_id == trained.result.run_id
    metrics = mlflow.get_run(trained.result.run_id).data.metrics
    for key in ("auc_test", "oracle_auc_test", "threshold", "business_cost_test", "cost_per_applicant_test"):
        assert key in metrics
    assert 0.65 < metrics["auc_test"] <= metrics["oracle_auc_test"] + 0.02
    # The business threshold beats the naive 0.5 on unseen data.
    assert metrics["business_cost_test"] < metrics["business_cost_test_at_0_5"]


def test_artifact_is_self_describing(trained: Trained) -> None:
    model = onnx.load(trained.export.artifact)
    meta = ModelMetadata.from_onnx_map({p.key: p.value for p in model.metadata_props})
    assert meta.model_name == MODEL_NAME
    assert meta.model_version == trained.result.model_version
    assert meta.mlflow_run_id == trained.result.run_id
    assert meta.threshold == pytest.approx(trained.result.metrics["threshold"])
    assert meta.feature_spec == SPEC
    assert meta.parity["passed"] and meta.parity["rows"] == 5_000
    assert {"onnxruntime", "lightgbm", "skl2onnx"} <= set(meta.library_versions)
    assert meta.metrics["auc_test"] == pytest.approx(trained.result.metrics["auc_test"])
    assert (trained.models_dir / "MODEL_CARD.md").read_text().startswith("# Model card")


def test_artifact_says_what_it_was_trained_on_and_who_it_is(trained: Trained) -> None:
    meta = trained.export.metadata
    data = meta.training_data
    assert data["kind"] == "synthetic" and data["seed"] == 1 and data["rows"] == 12_000
    assert data["generator"] == "training.synthetic.generate"
    assert data["trained_at"] <= meta.created_at
    assert len(meta.artifact_sha256) == 64
    assert export_run.verify_artifact_sha256(trained.export.artifact)
    # The identity is the content's: another artifact (one leaf moved) has another one.
    model = onnx.load(trained.export.artifact)
    node = next(n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor")
    next(a for a in node.attribute if a.name == "target_weights").floats[0] += 0.01
    assert export_run.artifact_sha256(model) != meta.artifact_sha256
    card = (trained.models_dir / "MODEL_CARD.md").read_text()
    assert meta.artifact_sha256 in card and "12,000 synthetic rows" in card and "seed 1" in card


def test_protected_attributes_are_accepted_but_never_model_inputs(trained: Trained) -> None:
    meta = trained.export.metadata
    assert meta.protected_attributes == ["CODE_GENDER"]
    assert "CODE_GENDER" in meta.feature_spec.names and "CODE_GENDER" not in meta.model_inputs
    session = ort.InferenceSession(str(trained.export.artifact))
    assert session.get_inputs()[0].shape[1] == len(meta.model_inputs) == len(meta.feature_spec) - 1
    assert "CODE_GENDER" not in trained.result.pipeline[:-1].get_feature_names_out()


def test_fairness_report_is_logged_carried_and_in_the_card(trained: Trained) -> None:
    report = trained.export.metadata.fairness
    assert report == trained.result.fairness
    gender, age = report["groups"]["gender"], report["groups"]["age_band"]
    assert {"F", "M"} <= set(gender) and set(age) <= {"<25", "25-39", "40-59", "60+"}
    assert sum(o["n"] for o in age.values()) == report["test_rows"] == sum(o["n"] for o in gender.values())
    for o in (*gender.values(), *age.values()):
        assert 0 <= o["refusal_rate"] <= 1
    rule = report["four_fifths"]["gender"]
    rates = [gender[g]["refusal_rate"] for g in ("F", "M")]
    assert rule["ratio"] == pytest.approx(min(rates) / max(rates)) and rule["passes"] == (rule["ratio"] >= 0.8)
    # Leaving gender out is measured against the same pipeline trained with it.
    other = report["with_protected_as_inputs"]
    assert report["cost_of_dropping"]["auc_test"] == pytest.approx(
        trained.result.metrics["auc_test"] - other["auc_test"]
    )
    # Gender is drawn independently of every other field: the inputs carry no proxy for it.
    assert report["proxy"]["inputs_auc"] < 0.6 and report["proxy"]["finds_proxy"] is False
    mlflow.set_tracking_uri(trained.tracking_uri)
    metrics = mlflow.get_run(trained.result.run_id).data.metrics
    assert metrics["fairness_groups_gender_F_refusal_rate"] == pytest.approx(gender["F"]["refusal_rate"])
    card = (trained.models_dir / "MODEL_CARD.md").read_text()
    assert "## Fairness" in card and "Four-fifths rule, gender" in card and "Proxy check" in card


def test_explanation_proof_is_recorded(trained: Trained) -> None:
    proof = trained.export.metadata.explanation_proof
    assert proof["passed"] and proof["rows"] == 5_000
    assert proof["max_abs_diff"] <= 1e-5 and proof["max_additivity_diff"] <= 1e-5
    assert "Reasons (TreeSHAP in the graph" in (trained.models_dir / "MODEL_CARD.md").read_text()


def test_onnx_scores_like_the_pipeline(trained: Trained) -> None:
    frame = generate(3_000, seed=99)
    session = ort.InferenceSession(str(trained.export.artifact))
    expected = trained.result.pipeline.predict_proba(frame[SPEC.names])[:, 1]
    actual = onnx_probabilities(session, SPEC, records(frame, SPEC))
    assert np.max(np.abs(expected - actual)) < 1e-5
    threshold = trained.export.metadata.threshold
    assert np.array_equal(expected >= threshold, actual >= threshold)


def test_reference_sample_carries_the_models_scores(trained: Trained) -> None:
    reference = pd.read_parquet(trained.models_dir / "reference_sample.parquet")
    assert len(reference) == 500
    assert {*SPEC.names, "TARGET", "probability", "prediction"} <= set(reference.columns)
    threshold = trained.export.metadata.threshold
    assert (reference["prediction"] == (reference["probability"] >= threshold)).all()


def test_model_behaviour_better_external_scores_lower_risk(trained: Trained) -> None:
    frame = generate(2_000, seed=5)[SPEC.names]
    better = frame.assign(
        EXT_SOURCE_2=np.clip(frame["EXT_SOURCE_2"] + 0.25, None, 0.85),
        EXT_SOURCE_3=np.clip(frame["EXT_SOURCE_3"] + 0.25, None, 0.89),
    )
    pipeline = trained.result.pipeline
    before, after = pipeline.predict_proba(frame)[:, 1], pipeline.predict_proba(better)[:, 1]
    assert after.mean() < before.mean()
    assert np.mean(after - before > 0.02) < 0.01  # a better score almost never raises risk much


def test_export_refuses_an_altered_graph_and_writes_nothing(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_to_onnx = export_run.to_onnx

    def tampered(pipeline):  # type: ignore[no-untyped-def]
        model = real_to_onnx(pipeline)
        for node in model.graph.node:
            if node.op_type == "TreeEnsembleRegressor":
                for attr in node.attribute:
                    if attr.name == "target_weights":
                        attr.floats[0] += 0.05  # one leaf of one tree moves
                break
        return model

    monkeypatch.setattr(export_run, "to_onnx", tampered)
    out = tmp_path / "models"
    with pytest.raises(ParityError, match="refused"):
        export_run.export_model(
            f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}", out, parity_rows=3_000, tracking_uri=trained.tracking_uri
        )
    assert not out.exists() or not any(out.iterdir())


def test_export_cli_fails_clearly_on_an_unknown_model(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = export_main(
        [
            "--model-uri",
            "models:/no-such-model@champion",
            "--out",
            str(tmp_path),
            "--tracking-uri",
            trained.tracking_uri,
        ]
    )
    assert code == 2
    assert "cannot export models:/no-such-model@champion" in capsys.readouterr().err


def test_training_cli_refuses_an_unknown_protected_attribute(capsys: pytest.CaptureFixture[str]) -> None:
    assert train_main(["--protected", "CODE_GENDER,NOT_A_FIELD", "--rows", "100"]) == 2
    assert "NOT_A_FIELD" in capsys.readouterr().err
    assert train_main(["--protected", "DAYS_EMPLOYED", "--rows", "100"]) == 2
    assert "DAYS_EMPLOYED must be a model input" in capsys.readouterr().err


def test_age_bands_follow_days_birth() -> None:
    days = -np.array([18.0, 24.99, 25.0, 39.99, 40.0, 59.99, 60.0, 69.0]) * 365.25
    assert list(age_bands(days)) == ["<25", "<25", "25-39", "25-39", "40-59", "40-59", "60+", "60+"]


def test_parity_tolerates_flips_only_in_the_band_around_the_threshold() -> None:
    reference = np.array([0.1, 0.3 - 4e-6, 0.5, 0.9])
    inside = reference + np.array([0.0, 5e-6, 0.0, 0.0])  # crosses 0.3 from 4e-6 below
    report = compare(reference, inside, threshold=0.3)
    assert report.decision_flips == 1 and report.flips_outside_band == 0 and report.passed
    outside = reference + np.array([0.0, 0.0, -0.3, 0.0])
    assert not compare(reference, outside, threshold=0.3).passed
    drift = reference + 2e-5
    assert not compare(reference, drift, threshold=0.3).passed


def test_best_threshold_minimises_the_business_cost() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(3_000) < 0.08).astype(int)
    p = np.clip(rng.normal(0.08 + 0.1 * y, 0.05), 0, 1).round(3)  # ties on purpose
    choice = best_threshold(y, p)
    brute = min(business_cost(y, p, t) for t in np.unique(np.concatenate([p, [1.01]])))
    assert choice.cost == brute == business_cost(y, p, choice.threshold)
    assert roc_auc_score(y, p) > 0.5


def test_challenger_export_and_promotion_move_the_aliases(trained: Trained, tmp_path: Path) -> None:
    from export.lifecycle import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

    mlflow.set_tracking_uri(trained.tracking_uri)
    client = mlflow.MlflowClient()
    name = trained.export.metadata.model_name
    first = client.get_model_version(name, trained.result.model_version)
    second = client.create_model_version(name, source=first.source, run_id=first.run_id)
    client.set_registered_model_alias(name, CHALLENGER, second.version)
    common = ["--out", str(tmp_path), "--parity-rows", "2000", "--tracking-uri", trained.tracking_uri]
    try:
        assert export_main(["--alias", CHALLENGER, *common]) == 0
        challenger = onnx.load(tmp_path / "challenger.onnx")
        assert _props(challenger)["model_version"] == str(second.version)
        assert not (tmp_path / "credit_scoring.onnx").exists()  # the served files are left alone

        assert export_main(["--promote", *common]) == 0
        assert client.get_model_version_by_alias(name, CHAMPION).version == second.version
        assert client.get_model_version_by_alias(name, PREVIOUS_CHAMPION).version == first.version
        assert CHALLENGER not in client.get_registered_model(name).aliases
        assert _props(onnx.load(tmp_path / "credit_scoring.onnx"))["model_version"] == str(second.version)
        assert export_main(["--promote", *common]) == 2  # no challenger left to promote
    finally:  # the session's registry as the other tests expect it
        client.set_registered_model_alias(name, CHAMPION, first.version)
        for alias in (CHALLENGER, PREVIOUS_CHAMPION):
            if alias in client.get_registered_model(name).aliases:
                client.delete_registered_model_alias(name, alias)


def _props(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
