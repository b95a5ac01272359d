"""Measure the performance test instead of assuming it: concept drift detected, false alarms.

Without any HTTP: K windows per case of labelled production-like applicants from the synthetic
generator (seeds the reference never used), scored by the exported model, their outcomes drawn
from the true probabilities. Cases:
- `unchanged`: the training world (a flag is a false alarm);
- `concept drift`: the same applicants (same seeds), outcomes drawn with the external scores at
  half their weight (`contract.risk.CONCEPT_DRIFT`): a flag is a detection.
Each window goes through the performance test of `python -m monitoring performance` and the
input-drift check of `python -m monitoring drift` (lean report): the inputs do not move under
concept drift, so input drift should stay silent while the performance test speaks.

    python -m monitoring calibrate-performance --windows 40 --sizes 2000,5000 --out docs/monitoring_calibration.md
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from contract.risk import CONCEPT_DRIFT, TRAINING_WORLD, RiskFunction
from monitoring.artifacts import PREDICTION, PROBABILITY, load_feature_spec, load_reference, typed_frame
from monitoring.calibrate import WINDOW_SEED, score_frame
from monitoring.drift import DriftConfig, run_drift
from monitoring.realised import PerformanceConfig, degradation, metrics, reference_metrics
from monitoring.simulate import TRUE_PROBABILITY, draw_labelled, draw_outcomes

CASES: dict[str, RiskFunction] = {"unchanged": TRAINING_WORLD, "concept drift": CONCEPT_DRIFT}
PERFORMANCE_SEED = WINDOW_SEED + 500_000  # apart from the input-drift calibration's windows


@dataclass(frozen=True)
class PerformanceWindow:
    case: str
    size: int
    seed: int
    performance_flagged: bool
    ranking: bool
    calibration: bool
    input_drift_flagged: bool
    auc: float
    auc_z: float
    calibration_z: float
    cost_per_applicant: float
    default_rate: float
    seconds: float


_state: dict[str, Any] = {}


def _init(model: Path, reference: Path, input_drift: bool) -> None:
    spec = load_feature_spec(model)
    frame = load_reference(reference, spec)
    _state.update(spec=spec, model=model, reference=frame, baseline=reference_metrics(frame), input_drift=input_drift)


def _run(task: tuple[str, int, int]) -> PerformanceWindow:
    case, size, seed = task
    start = time.perf_counter()
    spec, model = _state["spec"], _state["model"]
    drawn = draw_labelled(size, seed, spec, risk=CASES[case])
    scored = score_frame(typed_frame(drawn[spec.names], spec), spec, model)
    defaulted = draw_outcomes(drawn[TRUE_PROBABILITY].to_numpy(), seed)
    block = metrics(defaulted, scored[PROBABILITY].to_numpy(), scored[PREDICTION].to_numpy())
    test = degradation(block, _state["baseline"], PerformanceConfig())
    flagged_inputs = False
    if _state["input_drift"]:
        flagged_inputs = bool(
            run_drift(_state["reference"], scored, spec, DriftConfig(), detailed=False).drift_detected
        )
    return PerformanceWindow(
        case=case,
        size=size,
        seed=seed,
        performance_flagged=test["degraded"],
        ranking=bool(test.get("ranking_degraded")),
        calibration=bool(test.get("calibration_degraded")),
        input_drift_flagged=flagged_inputs,
        auc=float(block["auc"]),
        auc_z=float(test["auc_z"]) if test["auc_z"] is not None else float("nan"),
        calibration_z=float(test["calibration_z"]) if test["calibration_z"] is not None else float("nan"),
        cost_per_applicant=block["cost_per_applicant"],
        default_rate=block["default_rate"],
        seconds=time.perf_counter() - start,
    )


def run_performance_calibration(
    windows: int, sizes: Sequence[int], model: Path, reference: Path, *, jobs: int = 1, input_drift: bool = True
) -> pd.DataFrame:
    """One row per window, size and case. The same seeds in both cases: the same applicants, two worlds."""
    if not Path(model).is_file():
        raise FileNotFoundError(f"model not found: {model} (make model)")
    tasks = [(case, size, PERFORMANCE_SEED + k) for size in sizes for case in CASES for k in range(windows)]
    if jobs > 1:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init, initargs=(model, reference, input_drift))
        results: Any = pool.map(_run, tasks)
    else:
        pool = None
        _init(model, reference, input_drift)
        results = map(_run, tasks)
    rows = []
    try:
        for done, row in enumerate(results, start=1):
            rows.append(row)
            if done % 10 == 0 or done == len(tasks):
                print(f"  {done}/{len(tasks)} windows", flush=True)
    finally:
        if pool is not None:
            pool.shutdown()
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame.attrs["reference_auc"] = _state.get("baseline", {}).get("auc") if pool is None else None
    return frame


def rates(results: pd.DataFrame) -> pd.DataFrame:
    return (
        results.groupby(["case", "size"], sort=False)
        .agg(
            windows=("performance_flagged", "size"),
            performance_flagged=("performance_flagged", "mean"),
            by_ranking=("ranking", "mean"),
            by_calibration=("calibration", "mean"),
            input_drift_flagged=("input_drift_flagged", "mean"),
            mean_auc=("auc", "mean"),
            mean_cost=("cost_per_applicant", "mean"),
            mean_default_rate=("default_rate", "mean"),
        )
        .reset_index()
    )


def to_markdown(results: pd.DataFrame, command: str) -> str:
    table = rates(results)
    config = PerformanceConfig()
    lines = [
        "# Performance monitoring and concept drift, measured",
        "",
        f"Command: `{command}`",
        "",
        "Windows of labelled applicants drawn from `training.synthetic.generate` (seeds apart from the reference's "
        "and the input-drift windows'), scored by the exported model, outcomes drawn from the true probabilities "
        f"(`contract.risk`). **unchanged**: the training world; **concept drift**: {CONCEPT_DRIFT.describe()} "
        "(the same applicants, another world: every input keeps its distribution).",
        "",
        f"Performance test (`monitoring.realised`): AUC below the reference sample's, one-sided z > {config.z_auc:g} "
        f"(DeLong standard errors of both), or calibration in the large moved, |z| > {config.z_calibration:g}; "
        f"a window needs {config.min_defaults} defaults and as many good clients to be tested. Input drift: "
        "the tuned `python -m monitoring drift` check (lean report) on the same windows.",
        "",
        "For **unchanged** the flagged share is the false-alarm rate; for **concept drift** the detection rate "
        "(performance) and how often input-drift monitoring fires (it should not: nothing it watches moved).",
        "",
        "| window | case | windows | performance flagged | by ranking | by calibration | input drift flagged "
        "| mean AUC | cost/applicant | default rate |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.size} | {row.case} | {row.windows} | **{row.performance_flagged:.0%}** | {row.by_ranking:.0%} | "
            f"{row.by_calibration:.0%} | {row.input_drift_flagged:.0%} | {row.mean_auc:.3f} | {row.mean_cost:.3f} | "
            f"{row.mean_default_rate:.1%} |"
        )
    unchanged = results[results["case"] == "unchanged"]
    alarms = int(unchanged["performance_flagged"].sum())
    bound = f" (95% upper bound {3 / len(unchanged):.1%}, rule of three)" if alarms == 0 and len(unchanged) else ""
    lines += [
        "",
        f"False alarms of the performance test: {alarms}/{len(unchanged)} unchanged windows{bound}.",
        f"Mean wall time per window (drawing, scoring, both checks): {results['seconds'].mean():.1f} s.",
        "",
    ]
    return "\n".join(lines)
