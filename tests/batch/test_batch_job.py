"""The Spark job on a real local SparkSession: the API's probabilities and messages, counts, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from batch import job
from batch.__main__ import main
from batch.job import (
    InputError,
    JobConfig,
    JobCounts,
    JobResult,
    executors_share_files,
    score_portfolio,
    ship_model,
    workers_import_this_code,
)
from contract.scorer import Scorer

API_BATCH = 1000


@pytest.fixture(scope="module")
def parquet_run(spark: Any, portfolio: Any, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("parquet-run")
    return _run(spark, portfolio.parquet, out, model_path)


@pytest.fixture(scope="module")
def csv_run(spark: Any, portfolio: Any, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """CSV through Spark's reader and Spark's writer, with two reasons per refusal."""
    out = tmp_path_factory.mktemp("csv-run")
    return _run(spark, portfolio.csv, out, model_path, spark_writer=True, reasons=True, reasons_count=2)


@pytest.fixture(scope="module")
def reasons_run(spark: Any, portfolio: Any, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("reasons-run")
    return _run(spark, portfolio.parquet, out, model_path, reasons=True)


@dataclass(frozen=True)
class Run:
    result: JobResult
    out: Path

    @property
    def counts(self) -> JobCounts:
        return self.result.counts


@pytest.fixture(scope="module")
def parquet_spark_reader_run(
    spark: Any, portfolio: Any, model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    out = tmp_path_factory.mktemp("parquet-spark-reader-run")
    return _run(spark, portfolio.parquet, out, model_path, spark_reader=True)


def _run(spark: Any, source: Path, out: Path, model_path: Path, **options: Any) -> Run:
    config = JobConfig(input=str(source), output=str(out), model=model_path, **options)
    return Run(score_portfolio(spark, config, log=print), out)


def read(run: Run, part: str) -> pd.DataFrame:
    frame = pd.read_parquet(run.out / part).sort_values("row_number").reset_index(drop=True)
    return frame.drop(columns=["reasons"], errors="ignore")


def read_reasons(run: Run) -> list[list[dict[str, Any]] | None]:
    """Each scored row's reasons, in input order, with `value` read back from its JSON text."""
    rows = pq.read_table(run.out / "scored", columns=["row_number", "reasons"]).sort_by("row_number").to_pylist()
    return [
        None if row["reasons"] is None else [{**r, "value": json.loads(r["value"])} for r in row["reasons"]]
        for row in rows
    ]


def api_answers(client: TestClient, auth: dict[str, str], applicants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for start in range(0, len(applicants), API_BATCH):
        response = client.post(
            "/predict/batch", json={"applicants": applicants[start : start + API_BATCH]}, headers=auth
        )
        assert response.status_code == 200, response.text[:300]
        answers += response.json()["predictions"]
    return answers


def test_counts_add_up_and_name_every_row(parquet_run: Run, portfolio: Any) -> None:
    counts = parquet_run.counts
    assert (counts.read, counts.rejected) == (len(portfolio.frame), len(portfolio.bad_rows))
    assert counts.scored == counts.read - counts.rejected
    scored, rejects = read(parquet_run, "scored"), read(parquet_run, "rejects")
    assert len(scored) == counts.scored and len(rejects) == counts.rejected
    every_row = sorted([*scored["row_number"], *rejects["row_number"]])
    assert every_row == list(range(1, counts.read + 1))  # 1-based, none lost, none twice
    summary = json.loads((parquet_run.out / "summary.json").read_text())
    assert summary["counts"] == {"read": counts.read, "scored": counts.scored, "rejected": counts.rejected}


def test_probabilities_equal_the_apis_bit_for_bit(
    parquet_run: Run, portfolio: Any, client: TestClient, auth: dict[str, str]
) -> None:
    scored = read(parquet_run, "scored")
    good = [i for i in range(len(portfolio.frame)) if i not in portfolio.bad_rows]
    answers = api_answers(client, auth, [portfolio.applicants[i] for i in good])
    # Row numbers are the input's: row i (0-based) is row_number i + 1 and keeps its id.
    assert scored["row_number"].tolist() == [i + 1 for i in good]
    assert scored["SK_ID_CURR"].tolist() == portfolio.frame["SK_ID_CURR"].iloc[good].tolist()
    job = scored["probability"].to_numpy()
    api = np.array([a["probability"] for a in answers])
    assert np.array_equal(job.view(np.uint64), api.view(np.uint64))
    assert scored["prediction"].tolist() == [a["prediction"] for a in answers]
    assert scored["decision"].tolist() == [a["decision"] for a in answers]
    assert set(scored["threshold"]) == {parquet_run.result.threshold}
    assert set(scored["model_version"]) == {parquet_run.result.model_version}


def test_rejects_carry_the_apis_422_messages(
    parquet_run: Run, portfolio: Any, client: TestClient, auth: dict[str, str]
) -> None:
    rejects = read(parquet_run, "rejects")
    assert rejects["row_number"].tolist() == [i + 1 for i in portfolio.bad_rows]
    for row, problems in zip(portfolio.bad_rows, rejects["problems"], strict=True):
        response = client.post("/predict", json=portfolio.applicants[row], headers=auth)
        assert response.status_code == 422
        assert [dict(p) for p in problems] == response.json()["details"]


def test_reasons_are_the_apis_for_refused_rows_and_absent_for_accepted_ones(
    reasons_run: Run, portfolio: Any, client: TestClient, auth: dict[str, str]
) -> None:
    good = [i for i in range(len(portfolio.frame)) if i not in portfolio.bad_rows]
    answers = api_answers(client, auth, [portfolio.applicants[i] for i in good])
    reasons = read_reasons(reasons_run)
    assert reasons_run.result.reasons == 4 and len(reasons) == len(answers)
    refused = [n for n, answer in enumerate(answers) if answer["prediction"] == 1]
    assert len(refused) > 100  # enough refusals to mean something
    for given, answer in zip(reasons, answers, strict=True):
        if answer["prediction"] == 1:  # same reasons, same order, same words and contributions
            assert given == answer["reasons"] and given
        else:
            assert given is None and "reasons" not in answer


def test_reasons_count_limits_them_and_spark_writer_carries_them(csv_run: Run, reasons_run: Run) -> None:
    two, four = read_reasons(csv_run), read_reasons(reasons_run)
    assert csv_run.result.reasons == 2
    assert two == [None if r is None else r[:2] for r in four]


@pytest.mark.parametrize("other", ["csv_run", "parquet_spark_reader_run"])
def test_csv_and_sparks_parquet_reader_score_like_the_parquet_slices(
    other: str, parquet_run: Run, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(other)
    assert run.counts == parquet_run.counts
    pd.testing.assert_frame_equal(read(run, "scored"), read(parquet_run, "scored"), check_dtype=False)
    theirs, ours = read(run, "rejects"), read(parquet_run, "rejects")
    assert theirs["row_number"].tolist() == ours["row_number"].tolist()
    assert [list(map(dict, p)) for p in theirs["problems"]] == [list(map(dict, p)) for p in ours["problems"]]


def test_a_local_masters_executors_read_the_artifact_and_the_code_where_they_are(spark: Any, model_path: Path) -> None:
    settings = spark.sparkContext.getConf()
    assert executors_share_files(settings) and workers_import_this_code(settings)
    shipped = list(spark.sparkContext.listFiles)
    assert ship_model(spark, settings, model_path) == str(model_path.resolve())
    assert list(spark.sparkContext.listFiles) == shipped  # nothing copied


def test_any_other_master_gets_the_artifact_and_the_code_shipped(spark: Any, model_path: Path) -> None:
    settings = {**dict(spark.sparkContext.getConf().getAll()), "spark.master": "spark://scheduler:7077"}
    assert not executors_share_files(settings) and not workers_import_this_code(settings)
    assert ship_model(spark, settings, model_path) == model_path.name  # the executors' SparkFiles name
    assert any(name.endswith("/" + model_path.name) for name in spark.sparkContext.listFiles)
    # spark-submit --files shipped it already: only its name is needed.
    submitted = {**settings, "spark.files": f"file:///elsewhere/{model_path.name}"}
    assert ship_model(spark, submitted, model_path) == model_path.name


def test_shipped_artifact_and_code_score_as_in_place_ones(
    spark: Any, portfolio: Any, model_path: Path, parquet_run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job, "executors_share_files", lambda settings: False)  # as on a cluster: addFile, addPyFile
    shipped = _run(spark, portfolio.parquet, tmp_path / "shipped", model_path)
    assert shipped.counts == parquet_run.counts
    for part in ("scored", "rejects"):
        ours, theirs = (pq.read_table(run.out / part).sort_by("row_number") for run in (shipped, parquet_run))
        assert ours.equals(theirs), part


def test_executors_finding_another_artifact_stop_the_job_saying_so(
    spark: Any, portfolio: Any, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver checked one artifact; the file the executors open is another (as if replaced meanwhile)."""
    driver = Scorer(model_path)
    driver.load()
    monkeypatch.setattr(driver, "_metadata", replace(driver.metadata, artifact_sha256="f" * 64))
    config = JobConfig(input=str(portfolio.parquet), output=str(tmp_path / "out"), model=model_path)
    with pytest.raises(InputError, match=rf"^{model_path} is not the artifact the driver loaded \(artifact_sha256 "):
        score_portfolio(spark, config, log=print, scorer=driver)
    assert not (tmp_path / "out" / "scored").exists()  # nothing committed


def test_an_empty_book_scores_nothing_and_still_writes_both_outputs(
    spark: Any, portfolio: Any, model_path: Path, tmp_path: Path
) -> None:
    """No row group, so no slice: the one task there is scores nothing (no slice of its index)."""
    source = tmp_path / "empty.parquet"
    portfolio.frame.head(0).to_parquet(source)
    run = _run(spark, source, tmp_path / "out", model_path)
    assert run.counts == JobCounts(read=0, scored=0, rejected=0)
    assert read(run, "scored").empty and read(run, "rejects").empty
    assert "probability" in pq.read_schema(next((run.out / "scored").glob("*.parquet"))).names


def test_one_big_row_group_is_cut_for_every_core(spark: Any, portfolio: Any, model_path: Path, tmp_path: Path) -> None:
    """pandas writes a book of up to a million rows as one row group: the job cuts it into a slice per core."""
    source = tmp_path / "one-group.parquet"
    frame = pd.concat([portfolio.frame] * 10, ignore_index=True)  # 25,000 rows, room for 2 slices of a batch
    frame.to_parquet(source, index=False)
    assert pq.ParquetFile(source).metadata.num_row_groups == 1
    run = _run(spark, source, tmp_path / "out", model_path)
    bad = len(portfolio.bad_rows) * 10
    assert run.counts == JobCounts(read=len(frame), scored=len(frame) - bad, rejected=bad)
    assert spark.sparkContext.defaultParallelism == 2
    assert len(list((run.out / "scored").glob("*.parquet"))) == 2  # a part per slice
    assert read(run, "scored")["row_number"].tolist() == [
        n for n in range(1, len(frame) + 1) if (n - 1) % len(portfolio.frame) not in portfolio.bad_rows
    ]


@pytest.mark.parametrize("spark_writer", [False, True])
def test_a_book_of_many_row_groups_runs_a_task_per_core(
    spark: Any, portfolio: Any, model_path: Path, tmp_path: Path, spark_writer: bool
) -> None:
    """Five row groups on local[2]: two tasks (a task's end costs its worker a wait), every row once, in order."""
    source = tmp_path / "five-groups.parquet"
    pq.write_table(pq.read_table(portfolio.parquet), source, row_group_size=500)
    lines: list[str] = []
    config = JobConfig(input=str(source), output=str(tmp_path / "out"), model=model_path, spark_writer=spark_writer)
    run = Run(score_portfolio(spark, config, log=lines.append), tmp_path / "out")
    assert any(line.startswith("read 2,500 rows in 5 slice(s), 2 task(s)") for line in lines), lines
    bad = len(portfolio.bad_rows)
    assert run.counts == JobCounts(read=2_500, scored=2_500 - bad, rejected=bad)
    assert read(run, "scored")["row_number"].tolist() == [n for n in range(1, 2_501) if n - 1 not in portfolio.bad_rows]
    assert read(run, "rejects")["row_number"].tolist() == [row + 1 for row in portfolio.bad_rows]
    if not spark_writer:  # the executors' own parts: still one per slice
        assert sorted(p.name for p in (run.out / "scored").glob("*.parquet")) == [
            f"part-{first:012d}.parquet" for first in range(0, 2_500, 500)
        ]


def test_a_missing_column_fails_naming_it(spark: Any, portfolio: Any, model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "no-income.parquet"
    portfolio.frame.drop(columns=["AMT_INCOME_TOTAL", "EXT_SOURCE_1"]).head(50).to_parquet(source)
    with pytest.raises(InputError, match="lacks 2 column.*AMT_INCOME_TOTAL, EXT_SOURCE_1"):
        score_portfolio(spark, JobConfig(input=str(source), output=str(tmp_path / "out"), model=model_path))


def test_a_file_that_is_not_parquet_fails_clearly(spark: Any, model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "book.parquet"
    source.write_bytes(b"SK_ID_CURR,AMT_CREDIT\n1,2\n" * 20)
    with pytest.raises(InputError, match=r"cannot read .*book.parquet as PARQUET: "):
        score_portfolio(spark, JobConfig(input=str(source), output=str(tmp_path / "out"), model=model_path))


def test_a_malformed_csv_line_fails_clearly(spark: Any, portfolio: Any, model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "book.csv"
    lines = portfolio.csv.read_text().splitlines()[:40]
    lines[17] += ",surplus,cells"  # more cells than the header names
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"book.csv is malformed: a CSV line does not fit the header") as failure:
        score_portfolio(spark, JobConfig(input=str(source), output=str(tmp_path / "out"), model=model_path))
    assert "surplus" not in str(failure.value)  # the record itself is client data: not echoed


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_refuses_a_missing_input_before_starting_spark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.csv"
    code, err = cli(["score", "--input", str(missing), "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and f"error: input {missing} does not exist" in err


@pytest.fixture(scope="module")
def model_without_explainer(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same artifact exported before reasons existed: no TreeSHAP tables."""
    import onnx

    model = onnx.load(str(model_path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != "explainer"]
    del model.metadata_props[:]
    for key, value in kept:
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    path = tmp_path_factory.mktemp("old-artifact") / "credit_scoring.onnx"
    onnx.save(model, str(path))
    return path


def test_reasons_without_the_artifacts_tables_fail_clearly(
    spark: Any, portfolio: Any, model_without_explainer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    config = JobConfig(input=str(portfolio.parquet), output=str(out), model=model_without_explainer, reasons=True)
    with pytest.raises(InputError, match="--reasons needs the artifact's TreeSHAP tables: the artifact carries no"):
        score_portfolio(spark, config)
    assert not out.exists()  # nothing written, nothing started
    argv = ["score", "--input", str(portfolio.parquet), "--output", str(out), "--model", str(model_without_explainer)]
    code, err = cli([*argv, "--reasons"], capsys)
    assert code == 2 and "error: " in err and "carries no explainer: re-export it with `make export`" in err
    assert not out.exists()


def test_cli_refuses_a_reasons_count_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["score", "--input", "x.csv", "--output", str(tmp_path), "--reasons", "--reasons-count", "11"])
    assert stopped.value.code == 2
    assert "--reasons-count: 11 is not between 1 and 10" in capsys.readouterr().err


def test_cli_refuses_to_overwrite_an_earlier_run(
    parquet_run: Run, portfolio: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = parquet_run.out
    code, err = cli(["score", "--input", str(portfolio.parquet), "--output", str(out)], capsys)
    assert code == 2 and "already exists (pass --overwrite" in err
