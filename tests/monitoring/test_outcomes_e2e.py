"""End to end on a real server: the simulator sends applicants with application ids, posts their
outcomes, and `python -m monitoring performance` measures them; under concept drift performance
monitoring flags while input-drift monitoring stays silent. Plus the back office's CSV loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contract.risk import CONCEPT_DRIFT, TRAINING_WORLD
from contract.spec import FeatureSpec
from monitoring.__main__ import main
from monitoring.simulate import post_outcomes, simulate
from tests.conftest import challenger_copy

OUTCOME_KEY = "outcome-key-for-the-e2e"


@pytest.fixture(scope="module")
def challenger_path(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion's graph with a stricter threshold: same scores, some decisions flipped."""
    return challenger_copy(model_path, tmp_path_factory.mktemp("challenger"), threshold_factor=1.5)


def _send(url: str, key: str, spec: FeatureSpec, prefix: str, world: Any, seed: int) -> dict[str, int]:
    result = simulate(
        url, key, 4000, spec, seed=seed, risk=world, application_id_prefix=prefix, batch_size=200, progress=False
    )
    assert dict(result.statuses) == {"200": 20}
    return dict(post_outcomes(url, OUTCOME_KEY, result.application_ids, result.defaulted))


def test_concept_drift_is_caught_by_performance_not_by_input_drift(
    serve: Callable[..., Any],
    tmp_path: Path,
    model_path: Path,
    reference_sample_path: Path,
    spec: FeatureSpec,
    api_keys: tuple[str, ...],
    challenger_path: Path,
) -> None:
    server = serve(OUTCOME_API_KEY=OUTCOME_KEY, CHALLENGER_MODEL_PATH=str(challenger_path))
    logs = tmp_path / "logs"
    assert _send(server.base_url, api_keys[0], spec, "plain", TRAINING_WORLD, seed=11) == {"stored": 4000}
    # posting the same outcomes again changes nothing (the 5 applications re-scored: their latest decision is labelled)
    again = simulate(server.base_url, api_keys[0], 5, spec, seed=11, application_id_prefix="plain", progress=False)
    assert post_outcomes(server.base_url, OUTCOME_KEY, again.application_ids, again.defaulted) == {"duplicate": 5}
    drift_starts = datetime.now(UTC).isoformat()
    assert _send(server.base_url, api_keys[0], spec, "drifted", CONCEPT_DRIFT, seed=12) == {"stored": 4000}

    common = ["--logs", str(logs), "--model", str(model_path), "--reference", str(reference_sample_path)]
    plain_out, drifted_out = tmp_path / "plain", tmp_path / "drifted"
    assert main(["performance", *common, "--until", drift_starts, "--window", "all", "--out", str(plain_out)]) == 0
    assert (plain_out / "performance_report.html").read_text().count("Realised performance") == 1
    plain = json.loads((plain_out / "performance_summary.json").read_text())
    assert plain["label_coverage"] == pytest.approx(4000 / 4005)  # the 5 re-sent decisions have no outcome
    (window,) = plain["windows"]
    assert window["test"]["tested"] and not window["test"]["degraded"]
    challenger = plain["challenger"]
    assert challenger["score_pearson"] == pytest.approx(1.0)  # the same graph
    assert challenger["flips_to_refused"] == 0 and challenger["flips_to_accepted"] > 0  # stricter threshold
    assert challenger["realised"]["champion"]["auc"] == pytest.approx(challenger["realised"]["challenger"]["auc"])

    drifted_args = [*common, "--since", drift_starts, "--window", "all", "--no-evidently", "--out", str(drifted_out)]
    assert main(["performance", *drifted_args]) == 1
    drifted = json.loads((drifted_out / "performance_summary.json").read_text())
    assert drifted["windows"][0]["test"]["ranking_degraded"]
    assert drifted["windows"][0]["auc"] < window["auc"] - 0.05
    # the inputs did not move: input-drift monitoring says so
    inputs = ["drift", *common, "--since", drift_starts, "--quick", "--out", str(tmp_path / "inputs")]
    assert main(inputs) == 0


def _segment(folder: Path, ids: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "ts": "2026-06-01T10:00:00+00:00",
                "request_id": f"r-{i}",
                "application_id": app_id,
                "probability": 0.2,
                "prediction": 0,
                "model_version": "1",
                "batch_index": 0,
            }
        )  # fmt: skip
        for i, app_id in enumerate(ids)
    ]
    (folder / "predictions-2026-06-01-host-1.jsonl").write_text("\n".join(lines) + "\n")


def test_outcomes_load_csv_counts_and_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    _segment(logs, ["CE-1", "CE-2"])
    csv = tmp_path / "outcomes.csv"
    csv.write_text("application_id,defaulted,observed_at\nCE-1,true,2026-09-01\nCE-2,0,2026-09-02T10:00:00+02:00\n")
    assert main(["outcomes", "load", str(csv), "--logs", str(logs)]) == 0
    assert "2 outcomes: stored 2" in capsys.readouterr().out
    assert main(["outcomes", "load", str(csv), "--logs", str(logs)]) == 0
    assert "duplicate 2" in capsys.readouterr().out

    other = tmp_path / "other.csv"
    other.write_text("application_id,defaulted,observed_at\nCE-1,false,2026-09-01\nCE-9,true,2026-09-01\n")
    assert main(["outcomes", "load", str(other), "--logs", str(logs)]) == 1
    captured = capsys.readouterr()
    assert "conflict 1" in captured.out and "unknown 1" in captured.out
    assert "line 2: conflict" in captured.err and "line 3: unknown" in captured.err and "CE-9" in captured.err


def test_outcomes_load_refuses_a_bad_file_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    _segment(logs, ["CE-1"])
    bad = tmp_path / "bad.csv"
    bad.write_text("application_id,defaulted,observed_at\nCE-1,true,2026-09-01\nCE-2,maybe,2026-09-01\n,true,nope\n")
    assert main(["outcomes", "load", str(bad), "--logs", str(logs)]) == 2
    err = capsys.readouterr().err
    assert "nothing stored" in err and "line 3: defaulted" in err and "line 4: observed_at" in err
    assert not (logs / "outcomes.jsonl").exists() or (logs / "outcomes.jsonl").read_text() == ""
    header = tmp_path / "header.csv"
    header.write_text("app,defaulted\nCE-1,true\n")
    assert main(["outcomes", "load", str(header), "--logs", str(logs)]) == 2
    err = capsys.readouterr().err
    assert "no application_id or request_id column" in err and "no observed_at column" in err
    assert main(["outcomes", "load", str(tmp_path / "absent.csv"), "--logs", str(logs)]) == 2


def test_performance_without_outcomes_is_a_clear_usage_error(
    tmp_path: Path, model_path: Path, reference_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    _segment(logs, ["CE-1"])
    args = ["performance", "--logs", str(logs), "--model", str(model_path), "--reference", str(reference_sample_path)]
    assert main(args) == 2
    assert "none has a known outcome yet" in capsys.readouterr().err
    assert main([*args, "--window", "fortnight"]) == 2
