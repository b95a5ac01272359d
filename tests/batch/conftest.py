"""Fixtures for the batch job: a real local SparkSession (local[2]) and a small portfolio with
known bad rows, written as Parquet and CSV. If Spark cannot start, the tests fail with why."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batch.job import build_session, stop_session
from contract.spec import FeatureSpec
from training.synthetic import generate

PORTFOLIO_ROWS = 2_500


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    try:
        # As `python -m batch score` builds it: workers forked from the preloading daemon.
        session = build_session("local[2]", app_name="credit-scoring-batch-tests", preload_workers=True)
    except Exception as exc:  # no Java, no pyspark, no port: say so, never skip
        pytest.fail(f"a local SparkSession could not start (needs Java 17 and requirements-batch.txt): {exc}")
    yield session
    stop_session(session)  # as the CLI ends a job


@dataclass(frozen=True)
class BadValue:
    row: int  # 0-based index in the portfolio
    field: str
    value: Any


# One API problem each (and one row with two), in fields of every kind.
BAD_VALUES = (
    BadValue(3, "AMT_INCOME_TOTAL", -5.0),  # below the training range
    BadValue(8, "CODE_GENDER", "Q"),  # unknown level
    BadValue(15, "AMT_CREDIT", None),  # a required number missing
    BadValue(21, "DAYS_BIRTH", -10_000.5),  # a fraction in an integer field
    BadValue(34, "NAME_CONTRACT_TYPE", None),  # a required level missing
    BadValue(55, "EXT_SOURCE_2", 7.0),  # above the range, in a nullable field
    BadValue(55, "CNT_CHILDREN", 99),  # ... and a second problem in the same row
)


@dataclass(frozen=True)
class Portfolio:
    frame: pd.DataFrame  # as written to the files (bad values in place)
    applicants: list[dict[str, Any]]  # each row as the API's JSON body (bad values in place)
    bad_rows: tuple[int, ...]  # 0-based, sorted
    parquet: Path
    csv: Path


def as_json_applicant(row: dict[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """A file row as the API would receive it: NaN is null, integer fields are JSON integers."""
    applicant: dict[str, Any] = {}
    for feature in spec.features:
        value = row[feature.name]
        if isinstance(value, float) and math.isnan(value):
            value = None
        elif feature.dtype == "int64" and isinstance(value, float) and value.is_integer():
            value = int(value)
        applicant[feature.name] = value
    return applicant


@pytest.fixture(scope="session")
def portfolio(tmp_path_factory: pytest.TempPathFactory, spec: FeatureSpec) -> Portfolio:
    frame = generate(PORTFOLIO_ROWS, seed=14).drop(columns=["TARGET", "TRUE_PROBABILITY"], errors="ignore")
    applicants = [as_json_applicant(row, spec) for row in frame.to_dict("records")]
    for bad in BAD_VALUES:
        if frame[bad.field].dtype.kind in "iu":  # room for a fraction or a null
            frame[bad.field] = frame[bad.field].astype("float64")
        frame.loc[bad.row, bad.field] = bad.value
        applicants[bad.row][bad.field] = bad.value
    folder = tmp_path_factory.mktemp("portfolio")
    frame.to_parquet(folder / "portfolio.parquet", index=False)
    frame.to_csv(folder / "portfolio.csv", index=False)
    return Portfolio(
        frame=frame,
        applicants=applicants,
        bad_rows=tuple(sorted({bad.row for bad in BAD_VALUES})),
        parquet=folder / "portfolio.parquet",
        csv=folder / "portfolio.csv",
    )
