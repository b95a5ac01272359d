"""End to end: the real app serves simulated traffic, the log it writes feeds the CLI and the notebook.

One uvicorn process (`monitoring.demo.running_api`) on a free loopback port serves the
committed model with a temporary log folder; the simulator sends unshifted traffic (with a
few deliberately bad requests), then shifted traffic, some of it in batches; SIGTERM lets the
service flush its log. The notebook then runs top to bottom on that log through `make
notebook-run`, the command the README gives, from the repository root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import pytest

from monitoring.__main__ import EXIT_DRIFT, main
from monitoring.artifacts import load_feature_spec
from monitoring.demo import latest_demo_logs, running_api
from monitoring.logs import load_logs
from monitoring.simulate import SimulationResult, combine, post_outcomes, simulate

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "credit_scoring.onnx"
REFERENCE = ROOT / "models" / "reference_sample.parquet"
NOTEBOOK = ROOT / "notebook" / "monitoring.ipynb"
API_KEY = "notebook-test-key"
OUTCOME_KEY = "notebook-outcome-key"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def artifacts_present() -> None:
    """The committed model and reference sample are inputs, not options: without them, fail."""
    missing = [str(p.relative_to(ROOT)) for p in (MODEL, REFERENCE) if not p.is_file()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make model` builds them")


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


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def test_make_notebook_run_executes_it_into_its_own_folder(served: Served, tmp_path: Path) -> None:
    """`make notebook-run`, the README's command, from the repository root: outputs kept, reports/ untouched."""
    out = tmp_path / "notebook-out"
    venv = Path(sys.executable).parent.parent
    reports_before = _mtimes(ROOT / "reports")
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"MONITORING_OUT", "MAKEFLAGS", "MFLAGS"}},
        "MONITORING_LOGS": str(served.logs),
        "MONITORING_REFERENCE": str(REFERENCE),
        "MONITORING_MODEL": str(MODEL),
    }
    run = subprocess.run(
        # -o: this environment is installed already; make must not reinstall it mid-test.
        ["make", "--no-print-directory", "-o", f"{venv}/.dev-installed", "notebook-run",
         f"VENV={venv}", f"NOTEBOOK_OUT={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert f"executed notebook: {out}/monitoring.ipynb" in run.stdout

    notebook = nbformat.read(out / "monitoring.ipynb", as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # latency, errors, status, scores, inputs, categories, missing, drift; calibration + AUC,
    # cost + coverage, champion vs challenger, refusal rate by group
    assert len(images) >= 11
    assert (out / "monitoring.html").stat().st_size > 100_000  # the executed notebook, figures inlined
    summary = json.loads((out / "drift_summary.json").read_text())  # the notebook's own report folder
    assert (out / "drift_report.html").is_file()
    assert summary["sources"]["logs"] == str(served.logs)
    assert summary["drift_detected"] is True
    assert "AMT_INCOME_TOTAL" in [c["column"] for c in summary["drifted_columns"]]
    assert {m["column"] for m in summary["missing_value_drift"]} >= {"EXT_SOURCE_2", "EXT_SOURCE_3"}
    assert summary["traffic"]["latency_ms"]["p99"] > 0
    assert set(summary["refusal_by_group"]["overall"]) == {"gender", "age_band"}
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{served.plain.statuses['200']}/" in text and "decisions labelled" in text
    assert _mtimes(ROOT / "reports") == reports_before, "the notebook wrote into make monitor's reports/"


def test_the_notebook_reads_the_last_make_monitor_window_by_default(tmp_path: Path) -> None:
    assert latest_demo_logs(tmp_path) is None
    for name in ("demo-20261130-235959", "demo-20261201-101500", "demo-20261201-090000"):
        (tmp_path / "logs" / name).mkdir(parents=True)
    assert latest_demo_logs(tmp_path) == tmp_path / "logs" / "demo-20261201-101500"
    source = NOTEBOOK.with_suffix(".py").read_text()
    assert 'os.environ.get("MONITORING_LOGS") or latest_demo_logs(ROOT)' in source
    assert 'ROOT / "reports" / "notebook"' in source


def test_the_notebook_and_its_script_are_paired() -> None:
    from_ipynb = jupytext.read(NOTEBOOK)
    from_py = jupytext.read(NOTEBOOK.with_suffix(".py"))
    assert [(c.cell_type, c.source) for c in from_ipynb.cells] == [(c.cell_type, c.source) for c in from_py.cells]
    assert from_ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert all(not c.get("outputs") for c in from_ipynb.cells if c.cell_type == "code")  # outputs not committed
