"""The Home Credit application schema carried by the project, and the feature spec built from it.

`home_credit_schema.json` (beside this file) holds the facts of the real
`application_train.csv`: column order, dtypes, categorical levels, ranges and missing rates.
The loader checks real files against it, the generator reproduces it, and the feature spec
(the model's input contract) is derived from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from contract.features import DAYS_EMPLOYED_ANOMALY
from contract.spec import Feature, FeatureSpec

SCHEMA_PATH = Path(__file__).with_name("home_credit_schema.json")
ID_COLUMN = "SK_ID_CURR"
TARGET_COLUMN = "TARGET"
__all__ = ["DAYS_EMPLOYED_ANOMALY", "DEFAULT_PROTECTED", "build_feature_spec", "feature_columns", "load_schema"]

# Never model inputs (see `Feature.protected`): the synthetic risk depends on gender, and
# EU and US credit law forbid deciding on it.
DEFAULT_PROTECTED: tuple[str, ...] = ("CODE_GENDER",)

_DESCRIPTIONS: dict[str, str] = {
    "NAME_CONTRACT_TYPE": "Contract type: cash loan or revolving loan",
    "CODE_GENDER": "Gender of the client (XNA: not given)",
    "FLAG_OWN_CAR": "Does the client own a car (Y/N)",
    "FLAG_OWN_REALTY": "Does the client own a house or flat (Y/N)",
    "CNT_CHILDREN": "Number of children",
    "AMT_INCOME_TOTAL": "Annual income of the client",
    "AMT_CREDIT": "Credit amount of the loan",
    "AMT_ANNUITY": "Loan annuity (periodic repayment)",
    "AMT_GOODS_PRICE": "Price of the goods the loan is given for (consumer loans)",
    "NAME_TYPE_SUITE": "Who accompanied the client when applying",
    "NAME_INCOME_TYPE": "Income type (working, pensioner, ...)",
    "NAME_EDUCATION_TYPE": "Highest education level",
    "NAME_FAMILY_STATUS": "Family status",
    "NAME_HOUSING_TYPE": "Housing situation",
    "REGION_POPULATION_RELATIVE": "Normalised population of the client's region (higher: more populated)",
    "DAYS_BIRTH": "Age in days at application, negative (days before application)",
    "DAYS_EMPLOYED": "Days employed in the current job, negative; 365243 means not employed (pensioners)",
    "DAYS_REGISTRATION": "Days since the client changed registration, negative",
    "DAYS_ID_PUBLISH": "Days since the client changed the identity document, negative",
    "OWN_CAR_AGE": "Age of the client's car in years",
    "FLAG_MOBIL": "Client gave a mobile phone (1/0)",
    "FLAG_EMP_PHONE": "Client gave a work phone (1/0)",
    "FLAG_WORK_PHONE": "Client gave a home phone (1/0)",
    "FLAG_CONT_MOBILE": "Mobile phone was reachable (1/0)",
    "FLAG_PHONE": "Client gave a home phone (1/0)",
    "FLAG_EMAIL": "Client gave an email (1/0)",
    "OCCUPATION_TYPE": "Occupation of the client",
    "CNT_FAM_MEMBERS": "Number of family members",
    "REGION_RATING_CLIENT": "Home Credit's rating of the client's region (1, 2, 3)",
    "REGION_RATING_CLIENT_W_CITY": "Home Credit's rating of the client's region, city included (1, 2, 3)",
    "WEEKDAY_APPR_PROCESS_START": "Day of the week the application was made",
    "HOUR_APPR_PROCESS_START": "Hour of the day the application was made",
    "ORGANIZATION_TYPE": "Type of the employer's organisation (XNA: not employed)",
    "EXT_SOURCE_1": "Normalised score from external data source 1",
    "EXT_SOURCE_2": "Normalised score from external data source 2",
    "EXT_SOURCE_3": "Normalised score from external data source 3",
    "FONDKAPREMONT_MODE": "Capital repair fund of the client's building",
    "HOUSETYPE_MODE": "Type of the client's building",
    "WALLSMATERIAL_MODE": "Wall material of the client's building",
    "EMERGENCYSTATE_MODE": "Is the client's building in an emergency state",
    "DAYS_LAST_PHONE_CHANGE": "Days since the client changed phone, negative",
}

# Short names a credit officer can put in a letter ("External score 3 not provided",
# "Annuity is high relative to income"); other fields read by their description.
_LABELS: dict[str, str] = {
    "NAME_CONTRACT_TYPE": "Contract type",
    "CODE_GENDER": "Gender",
    "FLAG_OWN_CAR": "Car ownership",
    "FLAG_OWN_REALTY": "Home ownership",
    "CNT_CHILDREN": "Number of children",
    "AMT_INCOME_TOTAL": "Income",
    "AMT_CREDIT": "Credit amount",
    "AMT_ANNUITY": "Annuity",
    "AMT_GOODS_PRICE": "Price of the goods",
    "NAME_TYPE_SUITE": "Accompanying person",
    "NAME_INCOME_TYPE": "Income type",
    "NAME_EDUCATION_TYPE": "Education",
    "NAME_FAMILY_STATUS": "Family status",
    "NAME_HOUSING_TYPE": "Housing",
    "REGION_POPULATION_RELATIVE": "Population of the region",
    "DAYS_BIRTH": "Age",
    "DAYS_EMPLOYED": "Time in current job",
    "DAYS_REGISTRATION": "Time since the registration changed",
    "DAYS_ID_PUBLISH": "Time since the identity document changed",
    "DAYS_LAST_PHONE_CHANGE": "Time since the phone changed",
    "OWN_CAR_AGE": "Age of the car",
    "OCCUPATION_TYPE": "Occupation",
    "CNT_FAM_MEMBERS": "Number of family members",
    "REGION_RATING_CLIENT": "Rating of the region",
    "REGION_RATING_CLIENT_W_CITY": "Rating of the region and city",
    "WEEKDAY_APPR_PROCESS_START": "Day of the application",
    "HOUR_APPR_PROCESS_START": "Hour of the application",
    "ORGANIZATION_TYPE": "Employer's organisation type",
    "EXT_SOURCE_1": "External score 1",
    "EXT_SOURCE_2": "External score 2",
    "EXT_SOURCE_3": "External score 3",
}

_PATTERNS: list[tuple[str, str]] = [
    (
        r"^(REG|LIVE)_(REGION|CITY)_NOT_(LIVE|WORK)_(REGION|CITY)$",
        "Flag (1/0): the client's registration, live and work addresses differ at this level",
    ),
    (r"^FLAG_DOCUMENT_(\d+)$", "Client provided document {0} (1/0)"),
    (
        r"^(OBS|DEF)_(30|60)_CNT_SOCIAL_CIRCLE$",
        "Observations of the client's social surroundings ({0}: observed / defaulted, {1} days past due)",
    ),
    (r"^AMT_REQ_CREDIT_BUREAU_(\w+)$", "Enquiries to the credit bureau about the client in the last {0}"),
    (r"^(\w+)_(AVG|MODE|MEDI)$", "Normalised statistic of the client's building: {0} ({1})"),
]


@cache
def load_schema() -> dict[str, Any]:
    """The raw schema facts of the real application file."""
    return json.loads(SCHEMA_PATH.read_text())


def feature_columns() -> list[str]:
    """The 120 feature columns, in the real file's order."""
    return list(load_schema()["columns"])


def describe(name: str) -> str:
    if name in _DESCRIPTIONS:
        return _DESCRIPTIONS[name]
    for pattern, template in _PATTERNS:
        match = re.match(pattern, name)
        if match:
            return template.format(*(g.lower().replace("_", " ") for g in match.groups()))
    return name.replace("_", " ").capitalize()


def build_feature_spec(protected: Iterable[str] = DEFAULT_PROTECTED) -> FeatureSpec:
    """The input contract: every raw field with its type, range or levels; `protected` ones are no model input."""
    columns = load_schema()["columns"]
    protected = tuple(protected)
    unknown = [name for name in protected if name not in columns]
    if unknown:
        raise ValueError(f"protected attributes {unknown} are not application fields")
    features = []
    for name, col in columns.items():
        categorical = col["kind"] == "categorical"
        features.append(
            Feature(
                name=name,
                kind="categorical" if categorical else "numeric",
                dtype=col["dtype"],
                # A field never missing in the real data is required: the model never
                # learnt what its absence means.
                nullable=col["missing_rate"] > 0,
                description=describe(name),
                example=col["example"],
                minimum=None if categorical else col["min"],
                maximum=None if categorical else col["max"],
                levels=tuple(col["levels"]) if categorical else (),
                protected=name in protected,
                label=_LABELS.get(name, ""),
            )
        )
    return FeatureSpec(tuple(features))
