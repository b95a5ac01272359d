"""The synthetic world's true risk of default: what the generator draws TARGET from, and what the
simulator draws outcomes from (so monitoring never needs training code to know the truth).

`RiskFunction()` is the function the model was trained on. `CONCEPT_DRIFT` changes the world
while the applicants keep their distribution: the external scores lose half their weight
(a bureau whose scores stopped predicting as well), the intercept moved so that the default
rate stays about 8%: the served model, which leans on those scores, ranks worse although no
input moved and as many applicants default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_SD = 0.6
"""Standard deviation of the unobserved risk term (the risk no feature explains)."""


@dataclass(frozen=True)
class RiskFunction:
    intercept: float = -3.0
    """Set so that about 8% of applicants default, as in the real file (8.07%)."""
    ext_weight: float = 1.0
    """Multiplies the weights of EXT_SOURCE_1/2/3 (1: the training world)."""

    def probability(
        self,
        ext1: np.ndarray,
        ext2: np.ndarray,
        ext3: np.ndarray,
        age_years: np.ndarray,
        years_employed: np.ndarray,
        credit_to_annuity: np.ndarray,
        male: np.ndarray,
        higher_education: np.ndarray,
        own_car: np.ndarray,
        noise: np.ndarray,
    ) -> np.ndarray:
        """True probability of default, from a handful of features and an unobserved noise term.

        EXT_SOURCE values enter before any masking: a client whose score is missing from the
        file still has one, which the model cannot see (missing information costs accuracy).
        """
        logit = (
            self.intercept
            - self.ext_weight * (2.2 * (ext2 - 0.5) + 2.6 * (ext3 - 0.5) + 1.6 * (ext1 - 0.5))
            - 0.025 * (age_years - 43.0)
            - 0.06 * np.minimum(years_employed, 20.0)
            + 0.035 * (credit_to_annuity - 20.0) * (credit_to_annuity < 30)
            + 0.30 * male
            - 0.35 * higher_education
            - 0.20 * own_car
            + noise
        )
        return 1.0 / (1.0 + np.exp(-logit))

    def describe(self) -> str:
        if self == RiskFunction():
            return "training world"
        return f"external scores x{self.ext_weight:g} weight, intercept {self.intercept:g}"


TRAINING_WORLD = RiskFunction()
CONCEPT_DRIFT = RiskFunction(intercept=-2.55, ext_weight=0.5)
