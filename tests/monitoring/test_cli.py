"""`python -m monitoring drift`: exit 0 without drift, 1 with drift, 2 on usage or input errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pytest

from contract.records import Decision
from monitoring.__main__ import EXIT_DRIFT, EXIT_OK, EXIT_USAGE, main
from monitoring.artifacts import load_feature_spec
from monitoring.simulate import apply_shift, combine, to_payloads
from tests.decisions import scored_decisions
from training.synthetic import TRUE_PROBABILITY_COLUMN, generate

SPEC = load_feature_spec(None)
NO_MODEL = "no-such-model.onnx"  # the spec then comes from the training schema


def _write_log(folder: Path, n: int, seed: int, shift: str = "none") -> Path:
    raw = generate(n, seed=seed)
    frame = apply_shift(raw, combine([shift]), SPEC, seed=seed)
    payloads = to_payloads(frame, SPEC)
    start = datetime(2026, 11, 25, 9, tzinfo=UTC).timestamp()
    entries = scored_decisions(payloads, raw[TRUE_PROBABILITY_COLUMN], start, 1, f"r{seed}-")
    entries.append(
        Decision(
            ts=start + n,
            request_id="bad",
            endpoint="/predict",
            status=401,
            latency_s=0.0003,
            model_version="1",
            error="unauthorized",
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"predictions-2026-11-25-host-{seed}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for e in entries for r in e.records()))
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = generate(3000, seed=777)
    frame["probability"] = frame[TRUE_PROBABILITY_COLUMN]
    frame["prediction"] = (frame["probability"] >= 0.08).astype("int64")
    path = tmp_path_factory.mktemp("reference") / "reference_sample.parquet"
    frame[[*SPEC.names, "TARGET", "probability", "prediction"]].to_parquet(path)
    return path


def _drift(logs: Path, reference: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "drift",
            "--logs",
            str(logs),
            "--reference",
            str(reference),
            "--model",
            NO_MODEL,
            "--out",
            str(out),
            "--quick",
            *extra,
        ]
    )


def test_no_drift_exits_0_and_writes_both_files(tmp_path: Path, reference: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    logs = _write_log(tmp_path / "logs", 600, seed=1)

    assert _drift(logs, reference, tmp_path / "out") == EXIT_OK
    summary = json.loads((tmp_path / "out" / "drift_summary.json").read_text())
    assert summary["drift_detected"] is False
    page = (tmp_path / "out" / "drift_report.html").read_text()
    assert "<strong>No drift detected in 120 input columns" in page
    assert not (tmp_path / "out" / "drift_details.html").exists()  # --quick: no per-column figures
    traffic = summary["traffic"]
    assert traffic["requests"] == 601 and traffic["scored_applicants"] == 600
    assert traffic["error_rate"] == pytest.approx(1 / 601, abs=1e-6)
    assert set(traffic["latency_ms"]) == {"p50", "p95", "p99"}
    assert 0 < traffic["decision_rate"] < 1 and 0 < traffic["reference_decision_rate"] < 1
    assert "no drift detected" in capsys.readouterr().out


def test_drift_exits_1(tmp_path: Path, reference: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    logs = _write_log(tmp_path / "logs", 600, seed=2, shift="income")

    assert _drift(logs, reference, tmp_path / "out", "--json") == EXIT_DRIFT
    printed = json.loads(capsys.readouterr().out)
    assert printed["drift_detected"] is True and printed["drifted_column_count"] == 1


@pytest.mark.parametrize("case", ["empty folder", "missing folder", "missing reference", "only errors"])
def test_input_errors_exit_2_with_one_line(tmp_path: Path, reference: Path, capsys, case: str) -> None:  # type: ignore[no-untyped-def]
    logs = tmp_path / "logs"
    logs.mkdir()
    if case == "missing folder":
        logs = tmp_path / "absent"
    elif case == "missing reference":
        _write_log(logs, 5, seed=3)
        reference = tmp_path / "absent.parquet"
    elif case == "only errors":
        entry = Decision(
            ts=0.0,
            request_id="x",
            endpoint="/predict",
            status=401,
            latency_s=0.001,
            model_version="1",
            error="unauthorized",
        )
        (logs / "predictions-1970-01-01-h-1.jsonl").write_bytes(orjson.dumps(next(entry.records())) + b"\n")

    assert _drift(logs, reference, tmp_path / "out") == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_bad_arguments_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        main(["drift", "--threshold", "not-a-number"])
    assert exit_info.value.code == EXIT_USAGE
    assert main(["simulate", "--api-key", "k", "--drift", "weather"]) == EXIT_USAGE
    assert "unknown shift" in capsys.readouterr().err


def test_the_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitoring", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0
    assert "drift" in done.stdout and "simulate" in done.stdout and "calibrate" in done.stdout


def test_reference_without_a_feature_column_is_refused(tmp_path: Path, reference: Path) -> None:
    broken = tmp_path / "broken.parquet"
    pd.read_parquet(reference).drop(columns=["AMT_CREDIT"]).to_parquet(broken)
    logs = _write_log(tmp_path / "logs", 5, seed=4)
    assert _drift(logs, broken, tmp_path / "out") == EXIT_USAGE


def test_monitoring_stays_out_of_the_serving_image() -> None:
    root = Path(__file__).resolve().parents[2]
    lines = (root / "requirements-serve.txt").read_text().lower().splitlines()
    serve = {re.split(r"[=<>~!;\[ ]", line.strip(), maxsplit=1)[0] for line in lines if line.strip()[:1].isalnum()}
    assert "fastapi" in serve  # the file parses
    assert not serve & {"evidently", "pandas", "jupytext", "nbmake", "ipykernel", "matplotlib", "tqdm", "scipy"}
    for module in (root / "inference").rglob("*.py"):
        text = module.read_text()
        assert "import monitoring" not in text and "from monitoring" not in text, module


@pytest.mark.slow
def test_the_report_says_its_verdict_first_sorted_rounded_and_small(tmp_path: Path, reference: Path) -> None:
    """The page a reader opens: verdict, then the drifted column with its numbers, then all columns by drift."""
    logs = _write_log(tmp_path / "logs", 1000, seed=3, shift="income")
    out = tmp_path / "out"
    code = main(["drift", "--logs", str(logs), "--reference", str(reference), "--model", NO_MODEL, "--out", str(out)])
    assert code == EXIT_DRIFT
    page = (out / "drift_report.html").read_text()
    summary = json.loads((out / "drift_summary.json").read_text())

    verdict = page.index("<strong>Drift detected: 1 of 120 input columns drifted (AMT_INCOME_TOTAL)")
    drifted_table = page.index("<h2>Drifted columns</h2>")
    every_column = page.index("<h2>Every column, most drifted first</h2>")
    assert verdict < drifted_table < every_column
    (income,) = summary["drifted_columns"]
    assert income["column"] == "AMT_INCOME_TOTAL" and income["method"] == "ks_mannwhitney"
    assert income["current"]["median"] > income["reference"]["median"] * 1.2  # the x1.3 shift, in the numbers
    row = re.search(r'<tr class="drifted"><td>AMT_INCOME_TOTAL</td><td>ks_mannwhitney</td><td class="n">([^<]+)</td>'
                    r"<td>mean ([\d,]+), median", page[drifted_table:every_column])  # fmt: skip
    assert row, page[drifted_table:every_column]
    assert re.fullmatch(r"\d(\.\d)?e-\d+|< 1e-300", row.group(1)), "p-values to 2 significant digits"

    listed = re.findall(r"<tr(?: class=drifted)?><td>(\w+)</td><td>(?:numeric|categorical)</td>", page[every_column:])
    assert len(listed) == 120 and listed[0] == "AMT_INCOME_TOTAL"
    scores = [c["score"] for c in summary["columns"]]
    assert [c["column"] for c in summary["columns"]] == listed
    assert scores == sorted(scores), "the column table is sorted by drift, strongest first"
    assert not re.search(r"\d\.\d{6,}", page), "no unrounded number in what people read"

    # Small enough to mail: the page is tens of kB; Evidently's figures, drifted columns and score
    # only, sit beside it (its JavaScript bundle alone is 3.7 MB; all 120 columns made 10.9 MB).
    assert len(page.encode()) < 60_000
    assert (out / "drift_details.html").stat().st_size < 5_000_000
    assert 'href="drift_details.html"' in page
    details = (out / "drift_details.html").read_text()
    assert "AMT_INCOME_TOTAL" in details and "NAME_EDUCATION_TYPE" not in details
