"""A traffic simulator: realistic applicants from the synthetic generator, sent to a running API.

Applicants are drawn with `training.synthetic.generate` (same schema, levels, ranges and
missing rates as the real application file), optionally shifted to imitate a change in the
population, then posted to `/predict` (or `/predict/batch`) over one keep-alive connection
per worker thread. The service writes one log record per applicant; the drift report then
finds the shift (or, for unshifted traffic, should not).

Shifts (combinable):
- ``income``: AMT_INCOME_TOTAL x 1.3 (inflation, a richer clientele);
- ``category``: NAME_EDUCATION_TYPE "Higher education" from 24% to 45% of applicants;
- ``missing``: 30% of the EXT_SOURCE_1/2/3 values that were present go missing (a data provider outage).

Outcomes: with `application_id_prefix`, each applicant carries an application id; after a delay
`post_outcomes` reports whether each defaulted, drawn from the generator's true probability
(`contract.risk`): in the training world, or under concept drift (`--concept-drift`: the
external scores lose half their weight while every input keeps its distribution).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import numpy as np
import pandas as pd
from tqdm import tqdm

from contract.names import BATCH_PATH, PREDICT_PATH, READY_PATH
from contract.risk import TRAINING_WORLD, RiskFunction
from contract.spec import FeatureSpec

OUTCOMES_PATH = "/outcomes"
TRUE_PROBABILITY = "TRUE_PROBABILITY"


@dataclass(frozen=True)
class Shift:
    """A change of the applicant population; the default changes nothing."""

    income_factor: float = 1.0
    category: tuple[str, str, float] | None = None
    """(column, level, target share of that level)."""
    missing_columns: tuple[str, ...] = ()
    missing_rate: float = 0.0
    """Share of the present values of `missing_columns` that become missing."""

    @property
    def is_identity(self) -> bool:
        return self == Shift()

    def describe(self) -> str:
        parts = []
        if self.income_factor != 1.0:
            parts.append(f"AMT_INCOME_TOTAL x{self.income_factor:g}")
        if self.category:
            column, level, share = self.category
            parts.append(f"{column}={level!r} share -> {share:.0%}")
        if self.missing_columns and self.missing_rate:
            parts.append(f"+{self.missing_rate:.0%} missing in {','.join(self.missing_columns)}")
        return "; ".join(parts) or "none"


SHIFTS: dict[str, Shift] = {
    "none": Shift(),
    "income": Shift(income_factor=1.3),
    "category": Shift(category=("NAME_EDUCATION_TYPE", "Higher education", 0.45)),
    "missing": Shift(missing_columns=("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"), missing_rate=0.3),
}


def combine(names: Iterable[str]) -> Shift:
    """One shift doing all the named ones (``all`` = every kind)."""
    selected = list(SHIFTS) if "all" in names else list(names)
    unknown = [n for n in selected if n not in SHIFTS]
    if unknown:
        raise ValueError(f"unknown shift {unknown[0]!r} (choose from {', '.join([*SHIFTS, 'all'])})")
    out = Shift()
    for name in selected:
        shift = SHIFTS[name]
        out = replace(
            out,
            income_factor=out.income_factor * shift.income_factor,
            category=shift.category or out.category,
            missing_columns=tuple(dict.fromkeys(out.missing_columns + shift.missing_columns)),
            missing_rate=max(out.missing_rate, shift.missing_rate),
        )
    return out


def apply_shift(frame: pd.DataFrame, shift: Shift, spec: FeatureSpec, seed: int = 0) -> pd.DataFrame:
    """A copy of `frame` with the shift applied; values stay within the spec's bounds."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    if shift.income_factor != 1.0:
        feature = spec["AMT_INCOME_TOTAL"]
        out[feature.name] = (out[feature.name] * shift.income_factor).clip(feature.minimum, feature.maximum)
    if shift.category is not None:
        column, level, share = shift.category
        if level not in spec[column].levels:
            raise ValueError(f"{level!r} is not a level of {column}")
        current = float((out[column] == level).mean())
        if share > current:  # move other rows to the level
            move = (out[column] != level) & (rng.random(len(out)) < (share - current) / (1 - current))
            out.loc[move, column] = level
        elif share < current:  # move rows away from it, to the other levels in their current mix
            others = out.loc[out[column].notna() & (out[column] != level), column]
            move = (out[column] == level) & (rng.random(len(out)) < (current - share) / current)
            out.loc[move, column] = rng.choice(others.to_numpy(), size=int(move.sum())) if len(others) else None
    for column in shift.missing_columns:
        if not spec[column].nullable:
            raise ValueError(f"{column} is required by the API: it cannot go missing")
        blank = out[column].notna() & (rng.random(len(out)) < shift.missing_rate)
        out.loc[blank, column] = np.nan if not spec[column].is_categorical else None
    return out


def draw_applicants(n: int, seed: int, spec: FeatureSpec, shift: Shift | None = None) -> pd.DataFrame:
    """`n` synthetic applicants (the spec's columns only), shifted if asked."""
    return draw_labelled(n, seed, spec, shift)[spec.names]


def draw_labelled(
    n: int, seed: int, spec: FeatureSpec, shift: Shift | None = None, risk: RiskFunction = TRAINING_WORLD
) -> pd.DataFrame:
    """`n` synthetic applicants (the spec's columns, shifted if asked) and their TRUE_PROBABILITY of
    default in the world `risk` (the same applicants for a seed whatever the world)."""
    from training.synthetic import generate  # the generator carries pandas/numpy only

    generated = generate(n, seed=seed, risk=risk)
    frame = generated[spec.names]
    if shift and not shift.is_identity:
        frame = apply_shift(frame, shift, spec, seed=seed + 1)
    return frame.assign(**{TRUE_PROBABILITY: generated[TRUE_PROBABILITY].to_numpy()})


def draw_outcomes(true_probability: np.ndarray, seed: int) -> np.ndarray:
    """Whether each applicant defaulted: one Bernoulli draw of its true probability."""
    return np.random.default_rng(seed + 7).random(len(true_probability)) < np.asarray(true_probability)


def post_outcomes(
    url: str,
    outcome_key: str,
    application_ids: Sequence[str],
    defaulted: Sequence[bool],
    *,
    observed_at: str | None = None,
    chunk: int = 1000,
    transport: httpx.BaseTransport | None = None,
) -> Counter[str]:
    """POST /outcomes for the applicants sent, `chunk` per call; the per-item statuses counted."""
    when = observed_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    counts: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers={"x-api-key": outcome_key}, timeout=60, transport=transport) as client:
        for start in range(0, len(application_ids), chunk):
            items = [
                {"application_id": app_id, "defaulted": bool(flag), "observed_at": when}
                for app_id, flag in zip(
                    application_ids[start : start + chunk], defaulted[start : start + chunk], strict=True
                )
            ]
            response = client.post(OUTCOMES_PATH, json={"outcomes": items})
            if response.status_code not in (200, 409):
                counts[f"http_{response.status_code}"] += len(items)
                continue
            for result in response.json()["results"]:
                counts[result["status"]] += 1
    return counts


def to_payloads(
    frame: pd.DataFrame, spec: FeatureSpec, application_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """JSON bodies for /predict: missing values left out, integers as JSON integers (the API is strict);
    with `application_ids`, each body carries its own."""
    casts = {f.name: (str if f.is_categorical else int if f.dtype == "int64" else float) for f in spec.features}
    payloads = []
    for record in frame[spec.names].to_dict("records"):
        payloads.append(
            {
                name: casts[name](value)
                for name, value in record.items()
                if value is not None and not (isinstance(value, float) and np.isnan(value))
            }
        )
    if application_ids is not None:
        for payload, application_id in zip(payloads, application_ids, strict=True):
            payload["application_id"] = application_id
    return payloads


@dataclass
class SimulationResult:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    application_ids: list[str] = field(default_factory=list)
    defaulted: list[bool] = field(default_factory=list)
    """The outcome drawn for each application id (posted later by `post_outcomes`)."""

    def summary(self) -> dict[str, Any]:
        latencies = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {
            "requests": self.sent,
            "statuses": dict(sorted(self.statuses.items())),
            "elapsed_s": round(self.elapsed_s, 2),
            "requests_per_s": round(self.sent / self.elapsed_s, 1) if self.elapsed_s else None,
            "client_latency_ms": {f"p{q}": round(float(np.nanpercentile(latencies, q)), 2) for q in (50, 95, 99)},
        }


def wait_ready(url: str, timeout_s: float = 30.0) -> None:
    """Poll GET /ready until the service answers 200; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=2.0) as client:
        while True:
            try:
                if client.get(READY_PATH).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s")
            time.sleep(0.2)


def _spoil(payload: dict[str, Any], rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, str]]:
    """A deliberately bad request: a wrong key (401) or an impossible income (422)."""
    if rng.random() < 0.5:
        return payload, {"x-api-key": "wrong-key"}
    return {**payload, "AMT_INCOME_TOTAL": -1.0}, {}


def send(
    url: str,
    api_key: str,
    payloads: Sequence[dict[str, Any]],
    *,
    concurrency: int = 4,
    batch_size: int = 1,
    invalid_share: float = 0.0,
    timeout_s: float = 10.0,
    seed: int = 0,
    progress: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> SimulationResult:
    """Post the payloads (one per request, or in batches), `concurrency` requests in flight.

    `transport` replaces the network (tests pass an `httpx.MockTransport`).
    """
    rng = np.random.default_rng(seed)
    if batch_size > 1:
        bodies = [{"applicants": list(payloads[i : i + batch_size])} for i in range(0, len(payloads), batch_size)]
        path = BATCH_PATH
    else:
        bodies, path = list(payloads), PREDICT_PATH
    jobs: list[tuple[dict[str, Any], dict[str, str]]] = []
    for body in bodies:
        if invalid_share and rng.random() < invalid_share:
            if batch_size > 1:
                spoiled, extra = _spoil(body["applicants"][0], rng)
                jobs.append(({"applicants": [spoiled, *body["applicants"][1:]]}, extra))
            else:
                jobs.append(_spoil(body, rng))
        else:
            jobs.append((body, {}))

    result = SimulationResult()
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"x-api-key": api_key}
    with httpx.Client(base_url=url, headers=headers, limits=limits, timeout=timeout_s, transport=transport) as client:

        def post(job: tuple[dict[str, Any], dict[str, str]]) -> None:
            body, extra = job
            start = time.perf_counter()
            try:
                status = str(client.post(path, json=body, headers=extra).status_code)
            except httpx.TransportError as exc:
                status = type(exc).__name__
            with lock:
                result.latencies_ms.append((time.perf_counter() - start) * 1000)
                result.statuses[status] += 1
                result.sent += 1

        start = time.perf_counter()
        with (
            ThreadPoolExecutor(max_workers=concurrency) as pool,
            tqdm(total=len(jobs), unit="req", desc=f"POST {path}", disable=not progress) as bar,
        ):
            for future in as_completed([pool.submit(post, job) for job in jobs]):
                future.result()
                bar.update()
        result.elapsed_s = time.perf_counter() - start
    return result


def simulate(
    url: str,
    api_key: str,
    n: int,
    spec: FeatureSpec,
    *,
    seed: int = 0,
    shift: Shift | None = None,
    risk: RiskFunction = TRAINING_WORLD,
    application_id_prefix: str | None = None,
    **send_options: Any,
) -> SimulationResult:
    """Draw `n` applicants (shifted if asked) and send them; with `application_id_prefix`, each gets
    the id `<prefix>-<i>` and the result keeps the ids and the outcomes drawn in the world `risk`."""
    frame = draw_labelled(n, seed, spec, shift, risk)
    ids = [f"{application_id_prefix}-{i}" for i in range(n)] if application_id_prefix else None
    result = send(url, api_key, to_payloads(frame[spec.names], spec, ids), seed=seed, **send_options)
    if ids is not None:
        result.application_ids = ids
        result.defaulted = draw_outcomes(frame[TRUE_PROBABILITY].to_numpy(), seed).tolist()
    return result
