"""Outcomes for monitoring: read them from either store, join them to their decisions, load
the back office's CSV files (`python -m monitoring outcomes load FILE.csv`).

The store itself (idempotency, conflicts, unknown ids) is `contract.outcomes`, the same code
POST /outcomes runs: a CSV line and an API item are judged alike.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from contract.outcomes import Outcome, OutcomeItem, OutcomeStore, open_outcome_store

CSV_COLUMNS = ("application_id", "request_id", "defaulted", "observed_at")
DEFAULTED = "defaulted"
OUTCOME_COLUMNS = ["id_kind", "id", DEFAULTED, "observed_at", "received_at"]


class OutcomeFileError(ValueError):
    """The CSV file cannot be loaded (message lists the lines and fields at fault)."""


def read_outcomes(store: OutcomeStore) -> pd.DataFrame:
    """Every stored outcome: id_kind, id, defaulted (bool), observed_at and received_at (UTC)."""
    frame = pd.DataFrame.from_records(store.read(), columns=OUTCOME_COLUMNS)
    for name in ("observed_at", "received_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    frame[DEFAULTED] = frame[DEFAULTED].astype(bool)
    return frame


def label(predictions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """`predictions` with `defaulted` (NaN when unknown), `observed_at` and `label_delay_days`.

    An outcome by application_id labels that application's latest decision (a desk that scored
    an application twice acted on the second answer); one by request_id labels its /predict decision.
    """
    out = predictions.copy()
    out[DEFAULTED] = float("nan")
    out["observed_at"] = pd.NaT
    out["observed_at"] = pd.to_datetime(out["observed_at"], utc=True)
    if outcomes.empty or out.empty:
        out["label_delay_days"] = float("nan")
        return out
    by_app = outcomes[outcomes["id_kind"] == "application_id"].set_index("id")
    by_request = outcomes[outcomes["id_kind"] == "request_id"].set_index("id")
    app_ids = out["application_id"] if "application_id" in out else pd.Series(None, index=out.index)
    latest = app_ids.notna() & ~app_ids.duplicated(keep="last")
    for mask, key, table in ((latest, app_ids, by_app), (app_ids.isna(), out["request_id"], by_request)):
        matched = mask & key.isin(table.index)
        if matched.any():
            rows = table.loc[key[matched]]
            out.loc[matched, DEFAULTED] = rows[DEFAULTED].astype(float).to_numpy()
            out.loc[matched, "observed_at"] = rows["observed_at"].to_numpy()
    out["label_delay_days"] = (out["observed_at"] - out["ts"]).dt.total_seconds() / 86400
    return out


@dataclass
class LoadResult:
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    """The unknown, ambiguous and conflicting ids, with their line numbers."""


def parse_csv(path: Path) -> tuple[list[Outcome], list[int]]:
    """The file's outcomes and their line numbers; OutcomeFileError listing every bad line."""
    if not path.is_file():
        raise OutcomeFileError(f"file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        unknown = [name for name in header if name not in CSV_COLUMNS]
        missing = [name for name in ("defaulted", "observed_at") if name not in header]
        problems = [] if {"application_id", "request_id"} & set(header) else ["no application_id or request_id column"]
        problems += [f"no {name} column" for name in missing] + [f"unexpected column {name}" for name in unknown]
        if problems:
            raise OutcomeFileError(
                f"{path}: columns are application_id or request_id, defaulted, observed_at ({'; '.join(problems)})"
            )
        outcomes, errors = [], []
        lines = []
        for raw in reader:
            line = reader.line_num
            values = {k.strip(): v.strip() for k, v in raw.items() if k is not None and v is not None and v.strip()}
            try:
                outcomes.append(OutcomeItem.model_validate(values).outcome())
                lines.append(line)
            except ValidationError as exc:
                for error in exc.errors(include_url=False, include_input=False):
                    where = ".".join(str(part) for part in error["loc"]) or "row"
                    errors.append(f"line {line}: {where}: {error['msg']}")
    if errors:
        shown = "\n  ".join(errors[:20]) + (f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else "")
        raise OutcomeFileError(f"{path}: {len(errors)} invalid value(s), nothing stored:\n  {shown}")
    if not outcomes:
        raise OutcomeFileError(f"{path}: no outcome rows")
    return outcomes, lines


def load_csv(path: Path, *, logs: Path | None = None, db: str | None = None) -> LoadResult:
    """Store the file's outcomes (idempotent: loading a file twice stores it once)."""
    outcomes, lines = parse_csv(path)
    results = open_outcome_store(logs=logs, db=db).add(outcomes)
    loaded = LoadResult(rows=len(outcomes))
    for line, result in zip(lines, results, strict=True):
        loaded.counts[result.status] = loaded.counts.get(result.status, 0) + 1
        if result.status not in ("stored", "duplicate"):
            loaded.problems.append({"line": line, **result.as_dict()})
    return loaded
