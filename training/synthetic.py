"""A synthetic Home Credit application file: same 120 columns, levels, ranges and missing rates.

The real `application_train.csv` cannot be downloaded here, so this generator is the embedded
default. It reproduces the real file's schema (see `home_credit_schema.json`) and its main
dependencies: pensioners carry the DAYS_EMPLOYED = 365243 placeholder, no employer
(ORGANIZATION_TYPE = "XNA") and no work phone; OWN_CAR_AGE exists only for car owners;
building statistics and credit-bureau counts go missing together.

Defaults follow a known probability function of a handful of features plus an unobserved
noise term (`default_probability`), so the best achievable ranking is known: the oracle AUC
is the AUC of the true probabilities. Everything is deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from contract.risk import NOISE_SD, TRAINING_WORLD, RiskFunction
from training.schema import DAYS_EMPLOYED_ANOMALY, ID_COLUMN, TARGET_COLUMN, load_schema

TRUE_PROBABILITY_COLUMN = "TRUE_PROBABILITY"

# Level shares of the real file (levels not listed share what is left equally).
_LEVEL_SHARES: dict[str, dict[str, float]] = {
    "NAME_CONTRACT_TYPE": {"Cash loans": 0.905, "Revolving loans": 0.095},
    "CODE_GENDER": {"F": 0.658, "M": 0.34199, "XNA": 0.00001},
    "FLAG_OWN_CAR": {"N": 0.66, "Y": 0.34},
    "FLAG_OWN_REALTY": {"N": 0.306, "Y": 0.694},
    "NAME_TYPE_SUITE": {
        "Unaccompanied": 0.811,
        "Family": 0.131,
        "Spouse, partner": 0.037,
        "Children": 0.011,
        "Other_B": 0.0058,
        "Other_A": 0.0028,
        "Group of people": 0.0004,
    },
    "NAME_EDUCATION_TYPE": {
        "Secondary / secondary special": 0.71,
        "Higher education": 0.243,
        "Incomplete higher": 0.034,
        "Lower secondary": 0.0125,
        "Academic degree": 0.0005,
    },
    "NAME_FAMILY_STATUS": {
        "Married": 0.639,
        "Single / not married": 0.148,
        "Civil marriage": 0.097,
        "Separated": 0.064,
        "Widow": 0.05199,
        "Unknown": 0.00001,
    },
    "NAME_HOUSING_TYPE": {
        "House / apartment": 0.887,
        "With parents": 0.048,
        "Municipal apartment": 0.036,
        "Rented apartment": 0.016,
        "Office apartment": 0.0085,
        "Co-op apartment": 0.0045,
    },
    "WEEKDAY_APPR_PROCESS_START": {
        "TUESDAY": 0.175,
        "WEDNESDAY": 0.169,
        "MONDAY": 0.165,
        "THURSDAY": 0.164,
        "FRIDAY": 0.164,
        "SATURDAY": 0.11,
        "SUNDAY": 0.053,
    },
    "OCCUPATION_TYPE": {
        "Laborers": 0.261,
        "Sales staff": 0.152,
        "Core staff": 0.131,
        "Managers": 0.101,
        "Drivers": 0.088,
        "High skill tech staff": 0.054,
        "Accountants": 0.047,
        "Medicine staff": 0.04,
        "Security staff": 0.032,
        "Cooking staff": 0.028,
        "Cleaning staff": 0.022,
        "Private service staff": 0.013,
        "Low-skill Laborers": 0.010,
        "Waiters/barmen staff": 0.0065,
        "Secretaries": 0.0062,
        "Realty agents": 0.0036,
        "HR staff": 0.0027,
        "IT staff": 0.0025,
    },
    "ORGANIZATION_TYPE": {
        "Business Entity Type 3": 0.27,
        "Self-employed": 0.152,
        "Other": 0.066,
        "Medicine": 0.045,
        "Business Entity Type 2": 0.042,
        "Government": 0.041,
        "School": 0.035,
        "Trade: type 7": 0.031,
        "Kindergarten": 0.027,
        "Construction": 0.027,
    },
    "FONDKAPREMONT_MODE": {
        "reg oper account": 0.76,
        "reg oper spec account": 0.124,
        "not specified": 0.058,
        "org spec account": 0.058,
    },
    "HOUSETYPE_MODE": {"block of flats": 0.98, "specific housing": 0.01, "terraced house": 0.01},
    "WALLSMATERIAL_MODE": {
        "Panel": 0.43,
        "Stone, brick": 0.42,
        "Block": 0.06,
        "Wooden": 0.035,
        "Mixed": 0.015,
        "Monolithic": 0.012,
        "Others": 0.008,
    },
    "EMERGENCYSTATE_MODE": {"No": 0.985, "Yes": 0.015},
}
_WORKING_INCOME_SHARES = {
    "Working": 0.63,
    "Commercial associate": 0.284,
    "State servant": 0.0855,
    "Student": 0.0002,
    "Businessman": 0.0001,
    "Maternity leave": 0.0002,
}
_FLAG_RATES = {
    "FLAG_MOBIL": 0.999997,
    "FLAG_WORK_PHONE": 0.2,
    "FLAG_CONT_MOBILE": 0.998,
    "FLAG_PHONE": 0.281,
    "FLAG_EMAIL": 0.057,
    "REG_REGION_NOT_LIVE_REGION": 0.015,
    "REG_REGION_NOT_WORK_REGION": 0.051,
    "LIVE_REGION_NOT_WORK_REGION": 0.041,
    "REG_CITY_NOT_LIVE_CITY": 0.078,
    "REG_CITY_NOT_WORK_CITY": 0.23,
    "LIVE_CITY_NOT_WORK_CITY": 0.18,
    "FLAG_DOCUMENT_2": 0.00004,
    "FLAG_DOCUMENT_3": 0.71,
    "FLAG_DOCUMENT_4": 0.00008,
    "FLAG_DOCUMENT_5": 0.015,
    "FLAG_DOCUMENT_6": 0.088,
    "FLAG_DOCUMENT_7": 0.0002,
    "FLAG_DOCUMENT_8": 0.081,
    "FLAG_DOCUMENT_9": 0.0039,
    "FLAG_DOCUMENT_10": 0.00002,
    "FLAG_DOCUMENT_11": 0.0039,
    "FLAG_DOCUMENT_12": 0.00001,
    "FLAG_DOCUMENT_13": 0.0035,
    "FLAG_DOCUMENT_14": 0.0029,
    "FLAG_DOCUMENT_15": 0.0012,
    "FLAG_DOCUMENT_16": 0.0099,
    "FLAG_DOCUMENT_17": 0.0003,
    "FLAG_DOCUMENT_18": 0.0081,
    "FLAG_DOCUMENT_19": 0.0006,
    "FLAG_DOCUMENT_20": 0.0005,
    "FLAG_DOCUMENT_21": 0.0003,
}
# Mean of each building statistic (the _AVG, _MODE and _MEDI variants share it).
_BUILDING_MEANS = {
    "APARTMENTS": 0.117,
    "BASEMENTAREA": 0.088,
    "YEARS_BEGINEXPLUATATION": 0.977,
    "YEARS_BUILD": 0.752,
    "COMMONAREA": 0.045,
    "ELEVATORS": 0.079,
    "ENTRANCES": 0.15,
    "FLOORSMAX": 0.226,
    "FLOORSMIN": 0.232,
    "LANDAREA": 0.066,
    "LIVINGAPARTMENTS": 0.101,
    "LIVINGAREA": 0.107,
    "NONLIVINGAPARTMENTS": 0.009,
    "NONLIVINGAREA": 0.028,
    "TOTALAREA": 0.103,
}
_BUREAU_MEANS = {"HOUR": 0.0064, "DAY": 0.007, "WEEK": 0.034, "MON": 0.267, "QRT": 0.265, "YEAR": 1.9}

# The real file has 81 distinct regional populations; a fixed set (not drawn per seed), so
# that two samples differ only by chance.
_REGION_VALUES = np.round(np.concatenate([[0.00029, 0.072508], np.geomspace(0.0005, 0.05, 79)]), 6)
_REGION_SHARES = np.exp(-np.abs(np.log(_REGION_VALUES / 0.02))) / np.exp(-np.abs(np.log(_REGION_VALUES / 0.02))).sum()


def default_probability(*features: np.ndarray, risk: RiskFunction = TRAINING_WORLD) -> np.ndarray:
    """True probability of default (`contract.risk.RiskFunction.probability`, the training world by default)."""
    return risk.probability(*features)


def _choice(rng: np.random.Generator, levels: list[str], shares: dict[str, float], n: int) -> np.ndarray:
    known = [shares.get(level, 0.0) for level in levels]
    rest = [level for level in levels if level not in shares]
    leftover = max(0.0, 1.0 - sum(known))
    probs = np.array([shares.get(level, leftover / max(len(rest), 1)) for level in levels])
    return rng.choice(np.array(levels, dtype=object), size=n, p=probs / probs.sum())


def _mask(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    out = values.astype(object if values.dtype == object else float)
    out[rng.random(len(values)) < rate] = np.nan if out.dtype != object else None
    return out


def generate(
    n_rows: int, seed: int = 0, progress: Callable[[str], None] | None = None, risk: RiskFunction = TRAINING_WORLD
) -> pd.DataFrame:
    """Generate `n_rows` applications: SK_ID_CURR, TARGET, the 120 features, TRUE_PROBABILITY.

    `risk` is the world the defaults are drawn in (`contract.risk`); the applicants are the same
    for a seed whatever it is.
    """
    report = progress or (lambda _msg: None)
    schema = load_schema()["columns"]
    rng = np.random.default_rng(seed)
    n = n_rows
    cols: dict[str, np.ndarray] = {}
    levels = {name: col["levels"] for name, col in schema.items() if col["kind"] == "categorical"}

    report(f"generating {n:,} synthetic applications (seed {seed})")
    for name in (
        "NAME_CONTRACT_TYPE",
        "CODE_GENDER",
        "FLAG_OWN_CAR",
        "FLAG_OWN_REALTY",
        "NAME_EDUCATION_TYPE",
        "NAME_FAMILY_STATUS",
        "NAME_HOUSING_TYPE",
        "WEEKDAY_APPR_PROCESS_START",
    ):
        cols[name] = _choice(rng, levels[name], _LEVEL_SHARES[name], n)

    # Who the client is: age first, then pensioners (the 365243 placeholder) among the older.
    age_years = np.clip(rng.beta(2.0, 2.3, n) * 48.6 + 20.5, 20.5, 69.0)
    pension_p = np.clip(0.02 + 0.95 / (1 + np.exp(-(age_years - 55.0) / 2.5)), 0, 0.97)
    not_employed = rng.random(n) < pension_p
    income_type = _choice(rng, levels["NAME_INCOME_TYPE"], _WORKING_INCOME_SHARES, n)
    income_type[not_employed] = np.where(rng.random(not_employed.sum()) < 0.9995, "Pensioner", "Unemployed")
    cols["NAME_INCOME_TYPE"] = income_type
    days_birth = -np.round(age_years * 365.25).astype(np.int64)
    cols["DAYS_BIRTH"] = np.clip(days_birth, -25229, -7489)
    max_years_employed = np.maximum(age_years - 18.5, 0.1)
    years_employed = np.minimum(rng.exponential(6.5, n), max_years_employed)
    years_employed = np.minimum(years_employed, 49.0)
    days_employed = -np.round(years_employed * 365.25).astype(np.int64)
    cols["DAYS_EMPLOYED"] = np.where(not_employed, DAYS_EMPLOYED_ANOMALY, np.clip(days_employed, -17912, 0))
    cols["DAYS_REGISTRATION"] = -np.round(rng.uniform(0, 1, n) ** 1.4 * np.minimum(age_years * 365.25, 24672))
    cols["DAYS_ID_PUBLISH"] = -np.round(rng.uniform(0, 1, n) ** 0.8 * 7197).astype(np.int64)
    cols["DAYS_LAST_PHONE_CHANGE"] = -np.round(np.minimum(rng.exponential(960, n), 4292))

    org = _choice(rng, levels["ORGANIZATION_TYPE"], _LEVEL_SHARES["ORGANIZATION_TYPE"], n)
    org = np.where(org == "XNA", "Business Entity Type 3", org)
    cols["ORGANIZATION_TYPE"] = np.where(not_employed, "XNA", org)
    occupation = _choice(rng, levels["OCCUPATION_TYPE"], _LEVEL_SHARES["OCCUPATION_TYPE"], n)
    # Pensioners give no occupation; others leave it out about 15% of the time (31% in all).
    occupation[not_employed | (rng.random(n) < 0.16)] = None
    cols["OCCUPATION_TYPE"] = occupation

    # Family.
    married = np.isin(cols["NAME_FAMILY_STATUS"], ["Married", "Civil marriage"])
    children = rng.choice([0, 1, 2, 3, 4, 5], size=n, p=[0.70, 0.199, 0.087, 0.012, 0.0014, 0.0006])
    children = np.where(age_years > 55, np.minimum(children, rng.integers(0, 2, n)), children)
    rare = rng.random(n) < 0.00003
    children[rare] = rng.integers(6, 20, rare.sum())
    cols["CNT_CHILDREN"] = children.astype(np.int64)
    cols["CNT_FAM_MEMBERS"] = np.clip(1.0 + married + children, 1.0, 20.0)
    cols["NAME_TYPE_SUITE"] = _mask(
        rng,
        _choice(rng, levels["NAME_TYPE_SUITE"], _LEVEL_SHARES["NAME_TYPE_SUITE"], n),
        schema["NAME_TYPE_SUITE"]["missing_rate"],
    )

    report("  amounts, regions and external scores")
    higher_education = np.isin(cols["NAME_EDUCATION_TYPE"], ["Higher education", "Academic degree"])
    income = np.exp(rng.normal(11.9, 0.48, n) + 0.25 * higher_education - 0.35 * not_employed)
    income = np.clip(np.round(income / 2250.0) * 2250.0, 25650.0, 117_000_000.0)
    cols["AMT_INCOME_TOTAL"] = income
    revolving = cols["NAME_CONTRACT_TYPE"] == "Revolving loans"
    credit_cash = np.exp(rng.normal(13.1, 0.68, n) + 0.22 * np.log(income / 150_000.0))
    credit_rev = rng.choice([135000.0, 180000.0, 225000.0, 270000.0, 360000.0, 450000.0, 675000.0], size=n)
    credit = np.clip(np.where(revolving, credit_rev, np.round(credit_cash / 4.5) * 4.5), 45000.0, 4050000.0)
    cols["AMT_CREDIT"] = credit
    credit_to_annuity = np.where(revolving, 20.0, np.clip(rng.gamma(9.0, 2.4, n), 8.0, 45.0))
    annuity = np.clip(np.round(credit / credit_to_annuity * 2) / 2, 1615.5, 258025.5)
    cols["AMT_ANNUITY"] = annuity
    goods = np.where(revolving, credit, np.round(credit * rng.uniform(0.78, 1.0, n) / 4500.0) * 4500.0)
    goods = np.clip(goods, 40500.0, 4050000.0)
    cols["AMT_GOODS_PRICE"] = _mask(rng, goods, schema["AMT_GOODS_PRICE"]["missing_rate"])

    region = rng.choice(_REGION_VALUES, size=n, p=_REGION_SHARES)
    cols["REGION_POPULATION_RELATIVE"] = region
    rating = np.where(region > 0.03, 1, np.where(region < 0.006, 3, 2))
    rating = np.where(rng.random(n) < 0.15, rng.choice([1, 2, 3], size=n, p=[0.1, 0.74, 0.16]), rating)
    cols["REGION_RATING_CLIENT"] = rating.astype(np.int64)
    cols["REGION_RATING_CLIENT_W_CITY"] = np.where(rng.random(n) < 0.9, rating, 2).astype(np.int64)
    cols["HOUR_APPR_PROCESS_START"] = np.clip(np.round(rng.normal(12.1, 3.3, n)), 0, 23).astype(np.int64)

    # External scores share a latent creditworthiness; the true values drive the risk.
    latent = rng.normal(0, 1, n) + 0.02 * (age_years - 43.0)

    def ext_score(rho: float, low: float, high: float) -> np.ndarray:
        z = rho * latent + np.sqrt(1 - rho * rho) * rng.normal(0, 1, n)
        u = 1.0 / (1.0 + np.exp(-1.2 * z))
        return low + (high - low) * u

    ext1 = ext_score(0.55, schema["EXT_SOURCE_1"]["min"], schema["EXT_SOURCE_1"]["max"])
    ext2 = ext_score(0.6, schema["EXT_SOURCE_2"]["min"], schema["EXT_SOURCE_2"]["max"])
    ext3 = ext_score(0.55, schema["EXT_SOURCE_3"]["min"], schema["EXT_SOURCE_3"]["max"])
    for name, values in (("EXT_SOURCE_1", ext1), ("EXT_SOURCE_2", ext2), ("EXT_SOURCE_3", ext3)):
        cols[name] = _mask(rng, values, schema[name]["missing_rate"])

    own_car = cols["FLAG_OWN_CAR"] == "Y"
    car_age = np.clip(np.round(rng.gamma(1.6, 7.5, n)), 0.0, 91.0)
    cols["OWN_CAR_AGE"] = np.where(own_car, car_age, np.nan)

    report("  flags, building statistics and bureau enquiries")
    for name, rate in _FLAG_RATES.items():
        cols[name] = (rng.random(n) < rate).astype(np.int64)
    cols["FLAG_EMP_PHONE"] = np.where(not_employed, 0, (rng.random(n) < 0.9995).astype(np.int64))
    cols["FLAG_DOCUMENT_3"] = np.where(not_employed & (rng.random(n) < 0.5), 0, cols["FLAG_DOCUMENT_3"])

    # Building statistics: one uniform per row decides which are missing, so columns with a
    # higher missing rate are missing whenever a lower one is (as in the real file).
    building_u = rng.random(n)
    building_level = rng.normal(0, 1, n)
    for name, col in schema.items():
        base, _, variant = name.rpartition("_")
        if variant not in ("AVG", "MODE", "MEDI") or base not in _BUILDING_MEANS:
            continue
        mean = _BUILDING_MEANS[base]
        concentration = 30.0 if mean > 0.5 else 4.0
        a, b = mean * concentration, (1 - mean) * concentration
        raw = rng.beta(a, b, n) * np.exp(0.15 * building_level)
        if variant != "AVG":
            raw = raw * rng.normal(1.0, 0.03, n)
        cols[name] = np.where(building_u < col["missing_rate"], np.nan, np.round(np.clip(raw, 0.0, 1.0), 4))
    for name in ("FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE"):
        values = _choice(rng, levels[name], _LEVEL_SHARES[name], n)
        values[building_u < schema[name]["missing_rate"]] = None
        cols[name] = values

    social_missing = rng.random(n) < schema["OBS_30_CNT_SOCIAL_CIRCLE"]["missing_rate"]
    obs30 = np.minimum(rng.negative_binomial(0.6, 0.3, n), 348).astype(float)
    obs60 = np.minimum(obs30 + (rng.random(n) < 0.02), 344)
    def30 = np.minimum(rng.binomial(obs30.astype(np.int64), 0.1), 34).astype(float)
    def60 = np.minimum(np.minimum(def30, rng.binomial(obs60.astype(np.int64), 0.07)), 24).astype(float)
    for name, values in (
        ("OBS_30_CNT_SOCIAL_CIRCLE", obs30),
        ("DEF_30_CNT_SOCIAL_CIRCLE", def30),
        ("OBS_60_CNT_SOCIAL_CIRCLE", obs60),
        ("DEF_60_CNT_SOCIAL_CIRCLE", def60),
    ):
        cols[name] = np.where(social_missing, np.nan, values)

    bureau_missing = rng.random(n) < schema["AMT_REQ_CREDIT_BUREAU_YEAR"]["missing_rate"]
    for period, mean in _BUREAU_MEANS.items():
        name = f"AMT_REQ_CREDIT_BUREAU_{period}"
        counts = np.minimum(rng.poisson(mean, n), schema[name]["max"]).astype(float)
        cols[name] = np.where(bureau_missing, np.nan, counts)

    report("  default outcomes from the known risk function")
    noise = rng.normal(0, NOISE_SD, n)
    true_p = default_probability(
        ext1,
        ext2,
        ext3,
        age_years,
        np.where(not_employed, 0.0, years_employed),
        credit / annuity,
        (cols["CODE_GENDER"] == "M").astype(float),
        higher_education.astype(float),
        own_car.astype(float),
        noise,
        risk=risk,
    )
    target = (rng.random(n) < true_p).astype(np.int64)

    frame = pd.DataFrame({ID_COLUMN: np.arange(100002, 100002 + n, dtype=np.int64), TARGET_COLUMN: target})
    features = pd.DataFrame({name: cols[name] for name in schema})
    for name, col in schema.items():
        if col["dtype"] == "string":
            features[name] = features[name].astype(object).where(features[name].notna(), None)
        elif col["dtype"] == "int64":
            features[name] = features[name].astype(np.int64)
        else:
            features[name] = features[name].astype(np.float64)
    frame = pd.concat([frame, features], axis=1)
    frame[TRUE_PROBABILITY_COLUMN] = true_p
    report(f"  done: {n:,} rows, default rate {target.mean():.2%}")
    return frame
