"""The fairness report, computed at training on the test set.

Outcomes by group (gender; age band from DAYS_BIRTH): how often each group is refused, and
what share of its actual defaulters is refused. The four-fifths rule compares the lowest
refusal rate with the highest. The report also says what leaving the protected attributes
out of the model cost (AUC and business cost against the same pipeline trained with them)
and whether the model's inputs carry a proxy for gender.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from contract.groups import AGE_SOURCE, GENDER, age_bands, group_outcomes

MIN_GROUP_SIZE = 100  # smaller groups are reported but left out of the four-fifths ratio
FOUR_FIFTHS = 0.8
PROXY_AUC = 0.6  # inputs predicting gender at least this well carry a proxy for it


def four_fifths(outcomes: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Lowest / highest refusal rate among groups of at least MIN_GROUP_SIZE applicants."""
    rates = {g: o["refusal_rate"] for g, o in outcomes.items() if o["n"] >= MIN_GROUP_SIZE}
    if len(rates) < 2:
        return {"ratio": None, "lowest": None, "highest": None, "passes": None}
    lowest, highest = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
    ratio = rates[lowest] / rates[highest] if rates[highest] > 0 else 1.0
    return {"ratio": ratio, "lowest": lowest, "highest": highest, "passes": bool(ratio >= FOUR_FIFTHS)}


def outcomes_by_group(test: pd.DataFrame, refused: np.ndarray, defaulted: np.ndarray) -> dict[str, Any]:
    groupings = {"gender": test[GENDER].fillna("missing").to_numpy(), "age_band": age_bands(test[AGE_SOURCE])}
    groups = {name: group_outcomes(g, refused, defaulted) for name, g in groupings.items()}
    return {"groups": groups, "four_fifths": {name: four_fifths(o) for name, o in groups.items()}}


def proxy_check(
    x_train: np.ndarray,
    train_gender: np.ndarray,
    x_test: np.ndarray,
    test_gender: np.ndarray,
    score_test: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """How well the model's inputs, and its score, predict gender (M vs F; AUC 0.5 = not at all)."""
    keep_train, keep_test = np.isin(train_gender, ("F", "M")), np.isin(test_gender, ("F", "M"))
    male_train, male_test = train_gender[keep_train] == "M", test_gender[keep_test] == "M"
    probe = lgb.LGBMClassifier(
        n_estimators=200, learning_rate=0.1, num_leaves=15, n_jobs=2, verbose=-1, random_state=seed
    )
    probe.fit(x_train[keep_train], male_train)
    inputs_auc = float(roc_auc_score(male_test, np.asarray(probe.predict_proba(x_test[keep_test]))[:, 1]))
    score_auc = float(roc_auc_score(male_test, score_test[keep_test]))
    finds = inputs_auc >= PROXY_AUC
    verdict = (
        f"the model's inputs predict gender with AUC {inputs_auc:.3f} and its score with AUC {score_auc:.3f} "
        f"(0.5 = chance): {'a proxy for gender is available to the model' if finds else 'no proxy for gender found'}"
    )
    return {"inputs_auc": inputs_auc, "score_auc": score_auc, "finds_proxy": bool(finds), "verdict": verdict}


def cost_of_dropping(served: Mapping[str, float], with_protected: Mapping[str, float]) -> dict[str, float]:
    """Served model (protected attributes left out) minus the same pipeline trained with them."""
    return {
        "auc_test": served["auc_test"] - with_protected["auc_test"],
        "business_cost_test": served["business_cost_test"] - with_protected["business_cost_test"],
    }


def flatten_for_mlflow(report: Mapping[str, Any]) -> dict[str, float]:
    """The report's numbers as MLflow metric names (fairness_gender_F_refusal_rate, ...)."""
    flat: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}_{key}", inner)
        elif isinstance(value, bool | int | float):
            flat[re.sub(r"[^0-9A-Za-z_]", "_", prefix.replace("<", "lt").replace("+", "plus"))] = float(value)

    walk("fairness", {k: v for k, v in report.items() if k != "proxy"} | {"proxy": report.get("proxy", {})})
    return flat


def describe(report: Mapping[str, Any]) -> str:
    """One paragraph for the log and the model card's opening line."""
    parts = []
    for name, rule in report["four_fifths"].items():
        if rule["ratio"] is not None:
            parts.append(
                f"{name}: lowest/highest refusal rate {rule['ratio']:.2f} ({rule['lowest']} vs {rule['highest']}, "
                f"{'meets' if rule['passes'] else 'fails'} the four-fifths rule)"
            )
    cost = report.get("cost_of_dropping")
    if cost:
        parts.append(
            f"leaving {', '.join(report['protected_attributes'])} out changed test AUC by {cost['auc_test']:+.4f} "
            f"and business cost by {cost['business_cost_test']:+.0f}"
        )
    if report.get("proxy"):
        parts.append(report["proxy"]["verdict"])
    return "; ".join(parts)
