# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Credit scoring API: production monitoring
#
# A thin reader of the `monitoring` package: every number here comes from
# `monitoring.logs`, `monitoring.performance` and `monitoring.drift`, the same code as
# `python -m monitoring drift`. The notebook only lays the results out and plots them.
#
# - **Traffic and performance**: latency percentiles over time, error rate, status codes.
# - **Scores and decisions**: production vs the training reference sample.
# - **Distributions**: key inputs, and missing-value shares, production vs reference.
# - **Drift detection**: the Evidently report (HTML + JSON summary) and its verdict per time window.
# - **Model performance**: once outcomes are back, realised AUC, business cost, calibration, label
#   coverage and delay per window (`monitoring.realised`, as `python -m monitoring performance`),
#   and the challenger against the champion on the same applicants.
# - **Refusal rate by group**: gender and age band per time window (`monitoring.groups`).
#
# Run it with `make notebook` (JupyterLab) or `make notebook-run` (executed into
# `reports/notebook/monitoring.ipynb` and `.html`), after `make monitor` has produced a log.
# Inputs, from environment variables (defaults: the repository's own folders):
# `MONITORING_LOGS` (prediction log folder; default: the folder of the last `make monitor`,
# `logs/demo-<time>/`, the very window its report in `reports/` describes, else `logs/`) or
# `MONITORING_DB` (a PostgreSQL decision store URL, e.g. `$DATABASE_URL`: read instead of the
# folder), `MONITORING_SINCE` / `MONITORING_UNTIL` (ISO 8601 window, UTC, open by default),
# `MONITORING_REFERENCE` (default `models/reference_sample.parquet`), `MONITORING_MODEL`
# (default `models/credit_scoring.onnx`) and `MONITORING_OUT` (the notebook's own report
# folder, default `reports/notebook/`: never `reports/`, which is `make monitor`'s).

# %%
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

ROOT = Path.cwd() if (Path.cwd() / "monitoring").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))

from monitoring.artifacts import load_feature_spec, load_reference  # noqa: E402
from monitoring.demo import latest_demo_logs  # noqa: E402
from monitoring.drift import drift_by_window  # noqa: E402
from monitoring.logs import load_decisions, parse_time  # noqa: E402
from monitoring.performance import latency_over_time, traffic_summary  # noqa: E402
from monitoring.report import build_report  # noqa: E402

LOGS = Path(os.environ.get("MONITORING_LOGS") or latest_demo_logs(ROOT) or ROOT / "logs")
REFERENCE = Path(os.environ.get("MONITORING_REFERENCE", ROOT / "models" / "reference_sample.parquet"))
MODEL = Path(os.environ.get("MONITORING_MODEL", ROOT / "models" / "credit_scoring.onnx"))
OUT = Path(os.environ.get("MONITORING_OUT") or ROOT / "reports" / "notebook")
DB = os.environ.get("MONITORING_DB") or None
SINCE = parse_time(os.environ["MONITORING_SINCE"]) if os.environ.get("MONITORING_SINCE") else None
UNTIL = parse_time(os.environ["MONITORING_UNTIL"]) if os.environ.get("MONITORING_UNTIL") else None
WINDOW = os.environ.get("MONITORING_WINDOW", "1D")  # time window of the performance and group tables
plt.rcParams.update({"figure.figsize": (11, 3.6), "axes.grid": True, "grid.alpha": 0.3})
print(f"decisions: {'MONITORING_DB' if DB else LOGS}\nreference: {REFERENCE}\nmodel: {MODEL}\nreports: {OUT}")

# %% [markdown]
# ## Loading the log and the reference
# One row per scored applicant (`predictions`, inputs typed by the model's feature spec) and
# one row per HTTP request, rejected ones included (`requests`).

# %%
spec = load_feature_spec(MODEL)
log = load_decisions(spec, logs=LOGS, db=DB, since=SINCE, until=UNTIL)
reference = load_reference(REFERENCE, spec)
predictions, requests = log.predictions, log.requests
print(
    f"decisions from {log.source}, {log.window.describe()}: "
    f"{len(log.files)} log files, {len(requests)} requests, {len(predictions)} scored applicants, "
    f"{log.skipped_lines} unreadable lines; reference: {len(reference)} rows"
)
requests.head()

# %% [markdown]
# ## Traffic and performance

# %%
traffic = traffic_summary(log)
display(
    pd.DataFrame(
        {
            "requests": [traffic["requests"]],
            "error rate": [f"{traffic['error_rate']:.2%}"],
            **{f"latency {k} (ms)": [v] for k, v in traffic["latency_ms"].items()},
            **{f"model {k} (ms)": [v] for k, v in traffic["model_latency_ms"].items()},
            "decision rate": [f"{traffic['decision_rate']:.2%}"],
        }
    )
)
display(
    pd.DataFrame(
        {
            endpoint: {
                "requests": e["requests"],
                "error rate": f"{e['error_rate']:.2%}",
                **{f"latency {k} (ms)": v for k, v in e["latency_ms"].items()},
            }
            for endpoint, e in traffic["by_endpoint"].items()
        }
    ).T
)

# %%
span = requests["ts"].max() - requests["ts"].min()
# The finest bin that keeps the plots to a few hundred points, whatever the window's length.
freq = next((f for f in ("1s", "1min", "1h", "1D") if span / pd.Timedelta(f) <= 500), "7D")
over_time = latency_over_time(requests, freq=freq)
fig, (left, right) = plt.subplots(1, 2)
# x_compat: matplotlib's own date axis. pandas' period axis sizes its tick table by the view's width
# in bins, and a window of one bin gets a view widened by 5% of the epoch (gigabytes, minutes).
over_time[["p50", "p95", "p99"]].plot(ax=left, marker=".", x_compat=True, title=f"Request latency per {freq} (ms)")
left.set_yscale("log")
over_time["error_rate"].plot(
    ax=right, marker="o", drawstyle="steps-mid", color="tab:red", x_compat=True, title=f"Error rate per {freq}"
)
right.set(ylim=(0, max(0.05, over_time["error_rate"].max() * 1.2)))
fig.autofmt_xdate()
plt.show()

# %%
fig, (left, right) = plt.subplots(1, 2)
scored = requests[requests["status"] < 400]
left.hist([scored["latency_ms"], scored["model_latency_ms"].dropna()], bins=50, label=["request", "model only"])
left.set(title="Latency of scored requests (ms)", yscale="log")
left.legend()
requests["status"].astype(str).value_counts().sort_index().plot.bar(ax=right, title="Status codes", rot=0)
plt.show()

# %% [markdown]
# ## Scores and decisions
# The model's probability of default and its decision (1 = refused) in production, against
# the reference sample scored by the same model at export time.

# %%
fig, (left, right) = plt.subplots(1, 2)
left.hist(
    [reference["probability"], predictions["probability"]],
    bins=40,
    density=True,
    histtype="step",
    linewidth=1.5,
    label=["reference", "production"],
)
left.axvline(predictions["threshold"].dropna().iloc[0], color="k", ls="--", label="threshold")
left.set(title="Probability of default", xlabel="probability")
left.legend()
decisions = predictions.set_index("ts")["prediction"].resample(freq).mean().dropna()
right.plot(decisions.index, decisions, marker=".", label="production")
right.axhline(reference["prediction"].mean(), color="k", ls="--", label="reference")
right.set(title=f"Refusal rate per {freq}", ylim=(0, 1))
right.legend()
fig.autofmt_xdate()
plt.show()

# %% [markdown]
# ## Input distributions
# A few inputs the model leans on, production against reference (densities; categories as
# shares), then the inputs whose missing-value share moved most.

# %%
numeric = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]
fig, axes = plt.subplots(2, 3, figsize=(13, 6))
for ax, name in zip(axes.flat, numeric, strict=True):
    ref, cur = reference[name].dropna(), predictions[name].dropna()
    high = pd.concat([ref, cur]).quantile(0.99)
    ax.hist(
        [ref[ref <= high], cur[cur <= high]],
        bins=30,
        density=True,
        histtype="step",
        linewidth=1.5,
        label=["reference", "production"],
    )
    ax.set_title(name, fontsize=10)
axes.flat[0].legend()
fig.tight_layout()
plt.show()

# %%
categorical = ["NAME_EDUCATION_TYPE", "NAME_CONTRACT_TYPE", "NAME_INCOME_TYPE"]
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, name in zip(axes, categorical, strict=True):
    shares = pd.DataFrame(
        {
            "reference": reference[name].value_counts(normalize=True),
            "production": predictions[name].value_counts(normalize=True),
        }
    ).fillna(0)
    shares.sort_values("reference").tail(6).plot.barh(ax=ax, title=name)
fig.tight_layout()
plt.show()

# %%
missing = pd.DataFrame(
    {"reference": reference[spec.names].isna().mean(), "production": predictions[spec.names].isna().mean()}
)
missing["change"] = missing["production"] - missing["reference"]
top = missing.reindex(missing["change"].abs().sort_values(ascending=False).index).head(10)
top[["reference", "production"]].plot.barh(title="Missing-value share: largest changes", figsize=(11, 4))
plt.show()

# %% [markdown]
# ## Drift detection
# The Evidently report of production against reference: one test per input column, the score
# distribution and the missing-value shares. The verdict rules and their measured false-alarm
# and detection rates are in `docs/monitoring_calibration.md`.

# %%
report = build_report(LOGS, REFERENCE, OUT, MODEL, db=DB, since=SINCE, until=UNTIL)
summary = report.summary
display(
    Markdown(
        f"**{'Drift detected' if summary['drift_detected'] else 'No drift detected'}**: "
        f"{summary['drifted_column_count']} of {summary['column_count']} columns drifted; "
        f"score drift: {summary['score_drift']['drifted'] if summary['score_drift'] else 'n/a'}; "
        f"missing-value drift in {len(summary['missing_value_drift'])} columns. "
        f"Full report: `{report.html_path}`, summary: `{report.summary_path}`."
    )
)
display(pd.DataFrame(summary["drifted_columns"], columns=["column", "kind", "method", "score", "threshold"]))
display(pd.DataFrame(summary["missing_value_drift"], columns=["column", "reference_share", "current_share"]))

# %%
scores = (
    pd.DataFrame(
        [
            {"column": m["config"]["column"], "p_value": m["value"]}
            for m in report.drift.snapshot.dict()["metrics"]
            if m["config"]["type"].endswith(":ValueDrift")
        ]
    )
    .set_index("column")["p_value"]
    .clip(lower=1e-300)
)
strongest = scores.rename({"probability": "probability (model score)"}).sort_values().head(15).iloc[::-1]
ax = (-np.log10(strongest)).plot.barh(
    title="Strongest drift signals (-log10 p-value)", figsize=(11, 4.5), label="_nolegend_"
)
ax.axvline(-np.log10(summary["config"]["threshold"]), color="k", ls="--", label="drift threshold")
ax.legend()
plt.show()

# %% [markdown]
# ### When did it start?
# The same verdict on consecutive windows of the log, in time order (lean report, no
# per-column widgets): a shift that starts mid-log shows up from the first window it affects.

# %%
windows = drift_by_window(reference, predictions, spec, windows=4, min_rows=200)
display(windows)

# %% [markdown]
# The report page (`drift_report.html` in the output folder above: verdict, drifted columns,
# every column by drift) links to Evidently's figures for the drifted columns
# (`drift_details.html`); both are self-contained and open offline.

# %% [markdown]
# ## Model performance
# Outcomes come back long after the decision (`POST /outcomes` with `OUTCOME_API_KEY`, or
# `python -m monitoring outcomes load FILE.csv`); each labels its decision by `application_id` (or
# the `request_id` of a `/predict` call). On the labelled decisions, per window and model version:
# AUC with its 95% DeLong interval, cost per applicant (10 x missed default + 1 x refused good
# client), refusal and default rates, Brier score, label coverage and delay, and the degradation
# test against the labelled reference sample (see `docs/MONITORING.md`).

# %%
from monitoring.groups import refusal_by_group, refusal_table  # noqa: E402
from monitoring.performance_report import labelled_decisions  # noqa: E402
from monitoring.realised import PerformanceConfig, reference_metrics, summarize  # noqa: E402

labelled, _ = labelled_decisions(spec, logs=LOGS, db=DB, since=SINCE, until=UNTIL)
known = labelled[labelled["defaulted"].notna()]
baseline = reference_metrics(reference)
performance = summarize(labelled, baseline, PerformanceConfig(), WINDOW) if len(known) else None
print(f"{len(known)}/{len(labelled)} decisions labelled; reference AUC {baseline['auc']:.3f}")
if performance is None:
    display(Markdown("No outcome yet: post some (`python -m monitoring simulate --outcomes`) to see this section."))
else:
    columns = ["window_start", "model_version", "decisions", "label_coverage", "labelled", "auc", "cost_per_applicant"]
    columns += ["refusal_rate", "default_rate", "brier"]
    table = pd.DataFrame(performance["windows"])
    table["verdict"] = [
        "DEGRADED" if t["degraded"] else "ok" if t["tested"] else "too few labels" for t in table["test"]
    ]
    display(table[[*columns, "verdict"]])
    display(Markdown("**PERFORMANCE DEGRADED**" if performance["performance_degraded"] else "No degradation found."))

# %%
if performance is not None:
    fig, (ax_cal, ax_auc) = plt.subplots(1, 2, figsize=(11, 4))
    production = pd.DataFrame(performance["overall"]["calibration"])
    expected = pd.DataFrame(baseline["calibration"])
    ax_cal.plot(expected["predicted"], expected["observed"], "o-", label="reference sample")
    ax_cal.plot(production["predicted"], production["observed"], "s-", label="production (labelled)")
    top = max(production["predicted"].max(), production["observed"].max(), expected["observed"].max())
    ax_cal.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
    ax_cal.set(title="Calibration by score decile", xlabel="mean predicted default rate", ylabel="observed")
    ax_cal.legend()
    tested = table[table["auc"].notna()]
    lows = [ci[0] for ci in tested["auc_ci95"]]
    highs = [ci[1] for ci in tested["auc_ci95"]]
    x = np.arange(len(tested))
    ax_auc.errorbar(x, tested["auc"], yerr=[tested["auc"] - lows, highs - tested["auc"]], fmt="o", capsize=4)
    ax_auc.axhline(baseline["auc"], color="k", ls="--", label="reference AUC")
    ax_auc.set(title="Realised AUC per window (95% CI)", ylabel="AUC", xticks=x)
    ax_auc.set_xticklabels(
        [f"{str(w)[:16]}\nv{v}" for w, v in zip(tested["window_start"], tested["model_version"], strict=True)]
    )
    ax_auc.legend()
    plt.tight_layout()
    plt.show()

# %%
if performance is not None:
    fig, (ax_cost, ax_cover) = plt.subplots(1, 2, figsize=(11, 3.6))
    x = np.arange(len(table))
    ax_cost.bar(x, table["cost_per_applicant"], label="production")
    ax_cost.axhline(baseline["cost_per_applicant"], color="k", ls="--", label="reference")
    ax_cost.set(title="Business cost per applicant (10 x FN + 1 x FP)", xticks=x)
    ax_cost.legend()
    ax_cover.bar(x, table["label_coverage"], color="tab:green")
    delays = [w["label_delay_days"]["median"] for w in performance["windows"]]
    ax_cover.set(title="Label coverage per window", ylim=(0, 1.05), xticks=x)
    for position, delay in zip(x, delays, strict=True):
        if delay is not None:
            ax_cover.annotate(f"median delay {delay:.1f} d", (position, 0.5), ha="center", rotation=90)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ### Champion vs challenger
# With `CHALLENGER_MODEL_PATH` set, every applicant is also scored by the challenger (never
# answered): agreement, decision flips, score correlation, and once outcomes are back each one's
# realised AUC and cost on the same applicants.

# %%
challenger = performance["challenger"] if performance is not None else None
if challenger is None:
    display(Markdown("No challenger in these records."))
else:
    display(pd.Series({k: v for k, v in challenger.items() if k not in ("realised", "refusal_rate")}))
    realised = challenger["realised"]
    if realised:
        display(pd.DataFrame({name: realised[name] for name in ("champion", "challenger")}).T)
    both = labelled[labelled["challenger_probability"].notna()]
    ax = both.plot.scatter("probability", "challenger_probability", s=4, alpha=0.4, figsize=(5, 4))
    ax.set(title="Champion vs challenger scores", xlabel="champion", ylabel="challenger")
    plt.show()

# %% [markdown]
# ## Refusal rate by group
# How often each gender and age band is refused, per window: the groups of the model card's
# fairness report, on production decisions (protected attributes are recorded, never model inputs).

# %%
groups = refusal_by_group(predictions, WINDOW)
long = refusal_table(groups)
display(pd.DataFrame({name: pd.DataFrame(values).T["refusal_rate"] for name, values in groups["overall"].items()}))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, grouping in zip(axes, ("gender", "age_band"), strict=True):
    part = long[long["grouping"] == grouping].pivot(index="window_start", columns="group", values="refusal_rate")
    # Windows as labels, not a time axis: pandas' date locator runs away on one or two windows.
    part.index = [pd.Timestamp(start).strftime("%m-%d %H:%M") for start in part.index]
    part.plot(ax=ax, marker="o", title=f"Refusal rate by {grouping.replace('_', ' ')}")
    ax.set(ylabel="refusal rate", xlabel="window")
plt.tight_layout()
plt.show()
