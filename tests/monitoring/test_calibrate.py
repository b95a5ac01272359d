"""The calibration's bookkeeping: rates per cell and the markdown section (the windows themselves are
the drift report's, tested in test_monitoring_drift)."""

from __future__ import annotations

import pandas as pd

from monitoring.calibrate import GOAL, MEASURED_SHIFTS, TUNED, goal_lines, rates_table, to_markdown


def _results() -> pd.DataFrame:
    rows = []
    flags_by_shift = {"none": [False] * 9 + [True], "income": [True] * 10, "missing": [True] * 8 + [False] * 2}
    for shift, flags in flags_by_shift.items():
        for k, flagged in enumerate(flags):
            rows.append(
                {
                    "config": TUNED,
                    "size": 300,
                    "shift": shift,
                    "seed": k,
                    "flagged": flagged,
                    "features": flagged and shift != "missing",
                    "drifted_columns": int(flagged),
                    "score": None,
                    "missing": flagged and shift == "missing",
                    "seconds": 1.0,
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs.update(reference="generated", reference_rows=5000, scored=False)
    return frame


def test_rates_are_shares_of_windows() -> None:
    table = rates_table(_results()).set_index("shift")

    assert table.loc["none", "flagged"] == 0.1  # the false-alarm rate
    assert table.loc["income", "flagged"] == 1.0 and table.loc["missing", "flagged"] == 0.8
    assert table.loc["missing", "missing"] == 0.8 and table.loc["missing", "features"] == 0.0
    assert table["windows"].tolist() == [10, 10, 10]
    assert table["score"].isna().all()  # not scored: no score check to count


def test_markdown_names_the_command_and_the_rates() -> None:
    text = to_markdown(_results(), "python -m monitoring calibrate --windows 10")

    assert "`python -m monitoring calibrate --windows 10`" in text
    assert "false alarms 1/10 undrifted windows (10.0%)" in text
    assert "detection 80% at worst (missing, 300 rows)" in text
    assert "| 300 | none | 10 | **10%** |" in text


def _goal_results(detected: int, windows: int, alarms: int) -> pd.DataFrame:
    rows = []
    for shift, flags in {
        "income x1.1": [True] * detected + [False] * (windows - detected),
        "none": [True] * alarms + [False] * (windows - alarms),
    }.items():
        for k, flagged in enumerate(flags):
            rows.append({"config": TUNED, "size": 1000, "shift": shift, "seed": k, "flagged": flagged})
    return pd.DataFrame(rows)


def test_the_goal_is_said_plainly_met_or_not() -> None:
    (met,) = goal_lines(_goal_results(detected=58, windows=60, alarms=1))
    assert "): met.**" in met and "Detected in 58/60 windows (97%" in met and "false alarms in 1/60" in met
    (missed,) = goal_lines(_goal_results(detected=54, windows=60, alarms=0))  # 90% < 95%
    assert "NOT met" in missed
    (noisy,) = goal_lines(_goal_results(detected=60, windows=60, alarms=6))  # 10% false alarms > 5%
    assert "NOT met" in noisy
    (unmeasured,) = goal_lines(_goal_results(60, 60, 0).assign(size=300))
    assert unmeasured.startswith("Goal not measured")


def test_the_measured_shifts_include_the_small_income_shifts() -> None:
    factors = {name: shift.income_factor for name, shift in MEASURED_SHIFTS.items()}
    assert {factors["income x1.05"], factors["income x1.1"], factors["income x1.2"]} == {1.05, 1.1, 1.2}
    assert factors["none"] == 1.0 and GOAL.shift in MEASURED_SHIFTS
