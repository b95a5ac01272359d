"""The drift decision's settings (no Evidently import: the CLI's --help stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

CHI2_CONTINGENCY = "chi2_contingency"
"""Name of the categorical stat test `monitoring.drift` registers with Evidently."""


@dataclass(frozen=True)
class DriftConfig:
    """The drift decision's knobs; the defaults are the calibrated ones (docs/monitoring_calibration.md)."""

    num_method: str = "ks"
    """Evidently stat test for numerical columns (a p-value test: lower score = stronger drift)."""
    cat_method: str = CHI2_CONTINGENCY
    """Stat test for categorical columns."""
    threshold: float = 1e-5
    """Per-column threshold (p-value below it: the column drifted). About 0.1% of undrifted
    windows flag any column at all (120 tests each)."""
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
