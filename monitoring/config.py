"""The drift decision's settings (no Evidently import: the CLI's --help stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

CHI2_CONTINGENCY = "chi2_contingency"
"""Name of the categorical stat test `monitoring.drift` registers with Evidently."""
KS_MANN_WHITNEY = "ks_mannwhitney"
"""Name of the numerical stat test `monitoring.drift` registers: KS and Mann-Whitney, Bonferroni-combined."""


@dataclass(frozen=True)
class DriftConfig:
    """The drift decision's knobs; the defaults are the calibrated ones (docs/monitoring_calibration.md)."""

    num_method: str = KS_MANN_WHITNEY
    """Stat test for numerical columns (a p-value test: lower score = stronger drift). KS alone
    misses a third of the x1.1 income shifts in 1,000-applicant windows; Mann-Whitney adds the
    power of a rank test for a moved median and KS keeps changes of shape."""
    cat_method: str = CHI2_CONTINGENCY
    """Stat test for categorical columns."""
    threshold: float = 1e-4
    """Per-column threshold (p-value below it: the column drifted). 120 tests at 1e-4 bound the
    share of undrifted windows flagging any column at 1.2% (measured: 1 of 60 windows)."""
    min_drifted_columns: int = 1
    """The dataset drifted when at least this many columns did (Evidently's drift_share is
    derived from it: one drifted income column is enough to call a data shift)."""
    score_method: str = "ks"
    score_threshold: float = 1e-5
    missing_tolerance: float = 0.1
    """A column's missing share may move this far (absolute) from the reference's."""

    def drift_share(self, n_columns: int) -> float:
        # Half a column below the count: no float equality at the boundary.
        return (self.min_drifted_columns - 0.5) / max(n_columns, 1)
