"""End to end: the real app serves simulated traffic, the log it writes feeds the CLI and the notebook.

One uvicorn process (`monitoring.demo.running_api`) on a free loopback port serves the
committed model with a temporary log folder; the simulator sends unshifted traffic (with a
few deliberately bad requests), then shifted traffic, some of it in batches; SIGTERM lets the
service flush its log. The notebook then runs top to bottom on that log (nbclient, the
engine nbmake uses).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import pytest

from monitoring.__main__ import EXIT_DRIFT, main
from monitoring.artifacts import load_feature_spec
from monitoring.demo import running_api
from monitoring.logs import load_logs
from monitoring.simulate import SimulationResult, combine, post_outcomes, simulate

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "credit_scoring.onnx"
REFERENCE = ROOT / "models" / "reference_sample.parquet"
NOTEBOOK = ROOT / "notebook" / "monitoring.ipynb"
API_KEY = "notebook-test-key"
OUTCOME_KEY = "notebook-outcome-key"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / "inference" / "app.py").is_file() or not MODEL.is_file() or not REFERENCE.is_file(),
        reason="needs the app and the exported model",
    ),
]


@dataclass
class Served:
    logs: Path
    plain: SimulationResult
    shifted: SimulationResult
    batched: SimulationResult


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    logs = tmp_path_factory.mktemp("served") / "logs"
    spec = load_feature_spec(MODEL)
    shift = combine(["income", "missing"])
    extra = {"OUTCOME_API_KEY": OUTCOME_KEY, "CHALLENGER_MODEL_PATH": str(MODEL)}
    with running_api(MODEL, logs, API_KEY, extra_env=extra) as url:  # SIGTERM on exit: the log writer drains
        plain = simulate(
            url, API_KEY, 300, spec, seed=101, invalid_share=0.05, application_id_prefix="nb", progress=False
        )
        outcomes = post_outcomes(url, OUTCOME_KEY, plain.application_ids, plain.defaulted)
        assert outcomes["stored"] == plain.statuses["200"]  # the refused requests left no decision: unknown
        shifted = simulate(url, API_KEY, 300, spec, seed=102, shift=shift, progress=False)
        batched = simulate(url, API_KEY, 100, spec, seed=103, shift=shift, batch_size=25, progress=False)
    yield Served(logs, plain, shifted, batched)


def test_the_simulator_drives_the_real_app(served: Served) -> None:
    assert served.plain.sent == 300
    assert served.plain.statuses["200"] + served.plain.statuses["401"] + served.plain.statuses["422"] == 300
    assert served.plain.statuses["401"] + served.plain.statuses["422"] > 0  # the deliberate bad requests
    assert served.shifted.statuses == {"200": 300}  # shifted applicants are still valid applicants
    assert served.batched.statuses == {"200": 4}

    log = load_logs(served.logs, load_feature_spec(MODEL))
    assert len(log.predictions) == served.plain.statuses["200"] + 300 + 100
    assert len(log.requests) == 300 + 300 + 4
    assert log.predictions["probability"].between(0, 1).all()
    assert set(log.predictions["endpoint"]) == {"/predict", "/predict/batch"}
    assert log.error_rate == pytest.approx((300 - served.plain.statuses["200"]) / 604)


def test_the_cli_flags_the_shifted_traffic(served: Served, tmp_path: Path) -> None:
    code = main(
        [
            "drift",
            "--logs",
            str(served.logs),
            "--reference",
            str(REFERENCE),
            "--model",
            str(MODEL),
            "--out",
            str(tmp_path),
            "--quick",
        ]
    )
    assert code == EXIT_DRIFT


def test_the_notebook_runs_top_to_bottom(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    out = tmp_path / "reports"
    for name, value in {
        "MONITORING_LOGS": served.logs,
        "MONITORING_REFERENCE": REFERENCE,
        "MONITORING_MODEL": MODEL,
        "MONITORING_OUT": out,
    }.items():
        monkeypatch.setenv(name, str(value))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    try:
        client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    finally:
        nbformat.write(notebook, tmp_path / "executed.ipynb")  # kept for a look when it fails

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # latency, errors, status, scores, inputs, categories, missing, drift; calibration + AUC,
    # cost + coverage, champion vs challenger, refusal rate by group
    assert len(images) >= 11
    summary = json.loads((out / "drift_summary.json").read_text())
    assert (out / "drift_report.html").is_file()
    assert summary["drift_detected"] is True
    assert "AMT_INCOME_TOTAL" in [c["column"] for c in summary["drifted_columns"]]
    assert {m["column"] for m in summary["missing_value_drift"]} >= {"EXT_SOURCE_2", "EXT_SOURCE_3"}
    assert summary["traffic"]["latency_ms"]["p99"] > 0
    assert set(summary["refusal_by_group"]["overall"]) == {"gender", "age_band"}
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{served.plain.statuses['200']}/" in text and "decisions labelled" in text


def test_the_notebook_and_its_script_are_paired() -> None:
    from_ipynb = jupytext.read(NOTEBOOK)
    from_py = jupytext.read(NOTEBOOK.with_suffix(".py"))
    assert [(c.cell_type, c.source) for c in from_ipynb.cells] == [(c.cell_type, c.source) for c in from_py.cells]
    assert from_ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert all(not c.get("outputs") for c in from_ipynb.cells if c.cell_type == "code")  # outputs not committed
