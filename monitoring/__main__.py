"""Command line: ``python -m monitoring {drift,performance,outcomes,simulate,demo,calibrate,calibrate-performance}``.

Exit codes (so a scheduler or CI job can act on them):
  0  no drift (drift, demo); no degradation (performance); every request answered without a
     server error (simulate); every line stored or already there (outcomes load); done (calibrate*)
  1  drift found (drift, demo); performance degraded (performance); transport errors or 5xx
     answers (simulate); some ids unknown, ambiguous or conflicting (outcomes load)
  2  usage or input error: bad arguments, no log files, no scored record, unreadable reference,
     no labelled decision, an invalid CSV file (nothing stored)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitoring.artifacts import DEFAULT_MODEL, DEFAULT_REFERENCE

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


def _add_drift(sub: Any) -> None:
    from monitoring.config import DriftConfig  # light: no Evidently import for --help

    defaults = DriftConfig()
    p = sub.add_parser(
        "drift",
        help="drift report: prediction log vs reference sample -> HTML + JSON",
        description="Compare production records with the training reference sample. "
        "Exit 0: no drift, 1: drift found, 2: usage or input error.",
    )
    p.add_argument(
        "--logs",
        type=Path,
        default=Path(os.environ.get("PREDICTION_LOG_DIR", "logs")),
        help="folder of predictions-*.jsonl files (default: $PREDICTION_LOG_DIR or logs/)",
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help='read the PostgreSQL decision store instead of --logs (e.g. --db "$DATABASE_URL")',
    )
    p.add_argument("--since", type=_time, default=None, help="window start, ISO 8601, UTC unless an offset is given")
    p.add_argument("--until", type=_time, default=None, help="window end (excluded), ISO 8601")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="reference sample (parquet/CSV)")
    p.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="ONNX artifact whose feature spec types the columns (training schema if absent)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("reports"), help="output folder (drift_report.html, drift_summary.json)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="same verdict without the per-column plots and scores (report ~3 s instead of ~15 s)",
    )
    p.add_argument("--threshold", type=float, default=defaults.threshold, help="per-column p-value threshold")
    p.add_argument(
        "--min-drifted-columns",
        type=int,
        default=defaults.min_drifted_columns,
        help="drifted columns that make a dataset drift",
    )
    p.add_argument("--num-method", default=defaults.num_method, help="Evidently stat test for numbers")
    p.add_argument("--cat-method", default=defaults.cat_method, help="stat test for categories")
    p.add_argument(
        "--missing-tolerance",
        type=float,
        default=defaults.missing_tolerance,
        help="allowed absolute change of a column's missing share",
    )
    p.add_argument("--json", action="store_true", help="print the whole JSON summary")


def _time(text: str) -> Any:
    from monitoring.logs import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None


def _add_simulate(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="send synthetic applicants to a running API (optionally shifted)",
        description="Post applicants drawn from the synthetic generator to POST /predict.",
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the API")
    p.add_argument("--api-key", default=None, help="API key (default: first key of $API_KEY)")
    p.add_argument("--n", type=int, default=2000, help="applicants to send")
    p.add_argument(
        "--drift",
        action="append",
        default=[],
        metavar="KIND",
        help="shift the population: income, category, missing or all (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0, help="generator seed (use a new one per run)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument("--batch-size", type=int, default=1, help=">1: POST /predict/batch with this many applicants")
    p.add_argument(
        "--invalid-share",
        type=float,
        default=0.0,
        help="share of deliberately bad requests (wrong key or impossible value) for error stats",
    )
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for GET /ready first")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--outcomes",
        action="store_true",
        help="give each applicant an application_id and, after --outcome-delay, POST /outcomes for them "
        "(defaults drawn from the generator's true probabilities)",
    )
    p.add_argument("--outcome-api-key", default=None, help="key for /outcomes (default: first of $OUTCOME_API_KEY)")
    p.add_argument("--outcome-delay", type=float, default=0.0, help="seconds between the last decision and outcomes")
    p.add_argument(
        "--concept-drift",
        action="store_true",
        help="outcomes drawn in a changed world: external scores lose half their weight (inputs unchanged)",
    )


def _add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="serve the API, send unshifted then shifted traffic, build the drift report",
        description="The whole loop (make monitor). Exit codes as for drift.",
    )
    p.add_argument(
        "--url",
        default=None,
        help="use this running API instead of starting one (then --logs must be its PREDICTION_LOG_DIR)",
    )
    p.add_argument("--api-key", default=None, help="key for --url (default: first key of $API_KEY)")
    p.add_argument("--n", type=int, default=2000, help="applicants in all: half unshifted, then half shifted")
    p.add_argument(
        "--drift",
        action="append",
        default=[],
        metavar="KIND",
        help="shift of the second half: income, category, missing, all or none (default: income)",
    )
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: a new one each run)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument("--invalid-share", type=float, default=0.01, help="share of deliberately bad requests")
    p.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="log folder (default: a new logs/demo-<time>/ for a started API, logs/ with --url)",
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model to serve and read the spec from")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="reference sample")
    p.add_argument("--out", type=Path, default=Path("reports"), help="report folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_calibrate(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure detection and false-alarm rates on synthetic windows",
        description="Run the drift check on K unshifted and K shifted windows per size.",
    )
    p.add_argument("--windows", type=int, default=50, help="windows per (size, shift) for the tuned config")
    p.add_argument(
        "--baseline-windows", type=int, default=20, help="windows per (size, shift) for the Evidently-default baselines"
    )
    p.add_argument("--sizes", default="300,1000,2000", help="comma-separated window sizes (applicants)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model to score windows (optional)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="reference sample (generated if absent)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count, at most 4)")
    p.add_argument("--out", type=Path, default=None, help="write the markdown section here")
    p.add_argument("--csv", type=Path, default=None, help="write the per-window results here")


def _add_store_options(p: Any) -> None:
    p.add_argument(
        "--logs",
        type=Path,
        default=Path(os.environ.get("PREDICTION_LOG_DIR", "logs")),
        help="folder of the JSONL decision store (default: $PREDICTION_LOG_DIR or logs/)",
    )
    p.add_argument(
        "--db", default=None, metavar="URL", help='the PostgreSQL store instead of --logs (e.g. --db "$DATABASE_URL")'
    )


def _add_performance(sub: Any) -> None:
    from monitoring.realised import PerformanceConfig

    defaults = PerformanceConfig()
    p = sub.add_parser(
        "performance",
        help="realised performance on decisions whose outcome is known -> HTML + JSON",
        description="AUC (95%% DeLong CI), cost per applicant, refusal/default rates, calibration, label "
        "coverage and delay per window and model version; champion vs challenger. "
        "Exit 0: no degradation, 1: performance degraded, 2: usage or input error.",
    )
    _add_store_options(p)
    p.add_argument("--since", type=_time, default=None, help="window start, ISO 8601, UTC unless an offset is given")
    p.add_argument("--until", type=_time, default=None, help="window end (excluded), ISO 8601")
    p.add_argument("--window", default="1D", help="time window of each row, a pandas frequency (1D, 7D, 12h; all)")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="labelled reference sample (the baseline)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="ONNX artifact whose feature spec types columns")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (performance_report.html, ...)")
    p.add_argument("--z-auc", type=float, default=defaults.z_auc, help="one-sided z of an AUC drop that flags")
    p.add_argument("--z-calibration", type=float, default=defaults.z_calibration, help="two-sided z, calibration")
    p.add_argument(
        "--min-defaults", type=int, default=defaults.min_defaults, help="defaults a window needs to be tested"
    )
    p.add_argument("--no-evidently", action="store_true", help="HTML without Evidently's classification report")
    p.add_argument("--json", action="store_true", help="print the whole JSON summary")


def _add_outcomes(sub: Any) -> None:
    p = sub.add_parser("outcomes", help="loan outcomes: load a back-office CSV file into the store")
    actions = p.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "load",
        help="store the outcomes of a CSV file (application_id or request_id, defaulted, observed_at)",
        description="Idempotent: a line already stored is a duplicate. A file with an invalid value stores nothing.",
    )
    load.add_argument("file", type=Path, help="CSV file with a header line")
    _add_store_options(load)


def _add_calibrate_performance(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate-performance",
        help="measure the performance test: concept drift detection and false alarms",
        description="Draw labelled windows in the training world and under concept drift, run the "
        "performance test and the input-drift check on each.",
    )
    p.add_argument("--windows", type=int, default=40, help="windows per case")
    p.add_argument("--sizes", default="2000,5000", help="comma-separated labelled applicants per window")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model scoring the windows")
    p.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="labelled reference sample")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (2 cores are shared: keep it small)")
    p.add_argument("--out", type=Path, default=None, help="append the markdown section to this file")
    p.add_argument("--csv", type=Path, default=None, help="write the per-window results here")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m monitoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = root.add_subparsers(dest="command", required=True)
    _add_drift(sub)
    _add_performance(sub)
    _add_outcomes(sub)
    _add_simulate(sub)
    _add_demo(sub)
    _add_calibrate(sub)
    _add_calibrate_performance(sub)
    return root


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_drift_command(args: argparse.Namespace) -> int:
    from contract.store import scrub
    from monitoring.artifacts import InvalidReferenceError
    from monitoring.config import DriftConfig
    from monitoring.logs import NoLogsError
    from monitoring.report import NoScoredRecordsError, build_report

    overrides = {
        name: getattr(args, name, None)
        for name in ("num_method", "cat_method", "threshold", "min_drifted_columns", "missing_tolerance")
    }
    config = DriftConfig(**{name: value for name, value in overrides.items() if value is not None})
    db, since, until = getattr(args, "db", None), getattr(args, "since", None), getattr(args, "until", None)
    if since and until and since >= until:
        return _fail(f"--since {since.isoformat()} must be before --until {until.isoformat()}")
    try:
        report = build_report(
            args.logs,
            args.reference,
            args.out,
            args.model,
            config,
            detailed=not args.quick,
            db=db,
            since=since,
            until=until,
        )
    except (NoLogsError, NoScoredRecordsError, InvalidReferenceError, FileNotFoundError) as exc:
        return _fail(scrub(str(exc), db))
    summary = report.summary
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_describe(summary))
        print(f"report:  {report.html_path}\nsummary: {report.summary_path}")
    return EXIT_DRIFT if summary["drift_detected"] else EXIT_OK


def _describe(summary: dict[str, Any]) -> str:
    traffic = summary["traffic"]
    latency = traffic["latency_ms"]
    window = summary.get("window") or {}
    lines = [
        f"decisions from {traffic.get('source')}, window {window.get('since') or 'open'} .. "
        f"{window.get('until') or 'open'} (records {traffic['first_ts']} .. {traffic['last_ts']})",
        f"{summary['current_rows']} scored applicants ({traffic['requests']} requests, "
        f"{traffic['files']} files) vs {summary['reference_rows']} reference rows",
        f"latency ms p50/p95/p99: {latency['p50']}/{latency['p95']}/{latency['p99']}; "
        f"error rate {traffic['error_rate']:.2%}; decision rate {traffic['decision_rate']:.2%}"
        + (f" (reference {traffic['reference_decision_rate']:.2%})" if "reference_decision_rate" in traffic else ""),
        f"drifted columns: {summary['drifted_column_count']}/{summary['column_count']}"
        + "".join(f"\n  {c['column']} ({c['method']} {c['score']:.3g})" for c in summary["drifted_columns"]),
    ]
    if summary["score_drift"]:
        s = summary["score_drift"]
        lines.append(
            f"score drift: {'YES' if s['drifted'] else 'no'} ({s['method']} {s['score']:.3g}; "
            f"mean {s['reference_mean']:.3f} -> {s['current_mean']:.3f})"
        )
    for m in summary["missing_value_drift"]:
        lines.append(f"missing values: {m['column']} {m['reference_share']:.1%} -> {m['current_share']:.1%}")
    lines.append("DRIFT DETECTED" if summary["drift_detected"] else "no drift detected")
    return "\n".join(lines)


def run_performance_command(args: argparse.Namespace) -> int:
    from contract.outcomes import OutcomeStoreError
    from contract.store import scrub
    from monitoring.artifacts import InvalidReferenceError
    from monitoring.logs import NoLogsError
    from monitoring.performance_report import NoLabelledDecisionsError, build_performance_report
    from monitoring.realised import PerformanceConfig

    if args.since and args.until and args.since >= args.until:
        return _fail(f"--since {args.since.isoformat()} must be before --until {args.until.isoformat()}")
    config = PerformanceConfig(z_auc=args.z_auc, z_calibration=args.z_calibration, min_defaults=args.min_defaults)
    window = None if args.window == "all" else args.window
    if window is not None:
        import pandas as pd

        try:
            pd.tseries.frequencies.to_offset(window)
        except ValueError:
            return _fail(f"--window {window!r} is not a pandas frequency (1D, 7D, 12h) nor 'all'")
    try:
        report = build_performance_report(
            None if args.db else args.logs,
            args.reference,
            args.out,
            args.model,
            config,
            window=window,
            db=args.db,
            since=args.since,
            until=args.until,
            evidently=not args.no_evidently,
        )
    except (NoLogsError, NoLabelledDecisionsError, InvalidReferenceError, OutcomeStoreError, FileNotFoundError) as exc:
        return _fail(scrub(str(exc), args.db))
    summary = report.summary
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(_describe_performance(summary))
        print(f"report:  {report.html_path}\nsummary: {report.summary_path}")
    return EXIT_DRIFT if summary["performance_degraded"] else EXIT_OK


def _describe_performance(summary: dict[str, Any]) -> str:
    ref = summary["reference"]
    lines = [
        f"{summary['labelled']}/{summary['decisions']} decisions labelled ({summary['label_coverage']:.1%}); "
        f"reference AUC {ref['auc']:.3f}, cost/applicant {ref['cost_per_applicant']:.3f}"
    ]
    for w in summary["windows"]:
        auc = "AUC -" if w["auc"] is None else f"AUC {w['auc']:.3f} [{w['auc_ci95'][0]:.3f}, {w['auc_ci95'][1]:.3f}]"
        test = w["test"]
        verdict = "DEGRADED" if test["degraded"] else "ok" if test["tested"] else "not tested (too few labels)"
        lines.append(
            f"  {w['window_start']} model {w['model_version']}: {w['labelled']}/{w['decisions']} labelled, {auc}, "
            f"cost {w['cost_per_applicant']:.3f}, refusal {w['refusal_rate']:.1%}, default {w['default_rate']:.1%}, "
            f"Brier {w['brier']:.4f}: {verdict}"
        )
    challenger = summary.get("challenger")
    if challenger:
        lines.append(
            f"challenger {','.join(challenger['challenger_versions'])} on {challenger['applicants']} applicants: "
            f"agreement {challenger['agreement']:.1%}, flips to refused {challenger['flips_to_refused']}, "
            f"to accepted {challenger['flips_to_accepted']}, score correlation {challenger['score_pearson']:.3f}"
        )
        realised = challenger.get("realised")
        if realised:
            lines.append(
                f"  realised AUC champion {realised['champion']['auc']:.3f} vs challenger "
                f"{realised['challenger']['auc']:.3f} (gap CI [{realised['auc_gap_ci95'][0]:.3f}, "
                f"{realised['auc_gap_ci95'][1]:.3f}]); cost {realised['champion']['cost_per_applicant']:.3f} vs "
                f"{realised['challenger']['cost_per_applicant']:.3f}"
            )
    lines.append("PERFORMANCE DEGRADED" if summary["performance_degraded"] else "no degradation found")
    return "\n".join(lines)


def run_outcomes_command(args: argparse.Namespace) -> int:
    from contract.outcomes import OutcomeStoreError
    from contract.store import scrub
    from monitoring.outcomes import OutcomeFileError, load_csv

    try:
        result = load_csv(args.file, logs=None if args.db else args.logs, db=args.db)
    except (OutcomeFileError, OutcomeStoreError) as exc:
        return _fail(scrub(str(exc), args.db))
    counts = ", ".join(f"{status} {n}" for status, n in sorted(result.counts.items()))
    print(f"{args.file}: {result.rows} outcomes: {counts}")
    for problem in result.problems[:20]:
        print(f"  line {problem['line']}: {problem['status']}: {problem.get('message', '')}", file=sys.stderr)
    return EXIT_DRIFT if result.problems else EXIT_OK


def run_simulate_command(args: argparse.Namespace) -> int:
    import time

    from contract.risk import CONCEPT_DRIFT, TRAINING_WORLD
    from monitoring.artifacts import load_feature_spec
    from monitoring.simulate import combine, post_outcomes, simulate, wait_ready

    api_key = args.api_key or next((k.strip() for k in os.environ.get("API_KEY", "").split(",") if k.strip()), None)
    if not api_key:
        return _fail("no API key: pass --api-key or set API_KEY")
    try:
        shift = combine(args.drift)
    except ValueError as exc:
        return _fail(str(exc))
    if args.n < 1 or args.concurrency < 1 or args.batch_size < 1 or not 0 <= args.invalid_share <= 1:
        return _fail("--n, --concurrency and --batch-size must be >= 1, --invalid-share within [0, 1]")
    if args.wait:
        try:
            wait_ready(args.url, args.wait)
        except TimeoutError as exc:
            return _fail(str(exc))
    spec = load_feature_spec(DEFAULT_MODEL)
    risk = CONCEPT_DRIFT if args.concept_drift else TRAINING_WORLD
    outcome_key = args.outcome_api_key or next(
        (k.strip() for k in os.environ.get("OUTCOME_API_KEY", "").split(",") if k.strip()), None
    )
    if args.outcomes and not outcome_key:
        return _fail("--outcomes needs a key: pass --outcome-api-key or set OUTCOME_API_KEY")
    if args.concept_drift and not args.outcomes:
        return _fail("--concept-drift changes the outcomes: add --outcomes")
    print(
        f"sending {args.n} applicants to {args.url} (shift: {shift.describe()}, seed {args.seed}"
        + (f", outcomes in the {risk.describe()})" if args.outcomes else ")"),
        file=sys.stderr,
    )
    result = simulate(
        args.url,
        api_key,
        args.n,
        spec,
        seed=args.seed,
        shift=shift,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        invalid_share=args.invalid_share,
        progress=not args.no_progress,
        risk=risk,
        application_id_prefix=f"sim{args.seed}-{int(time.time())}" if args.outcomes else None,
    )
    summary = result.summary()
    bad = sum(v for k, v in result.statuses.items() if not k.isdigit() or k.startswith("5"))
    if args.outcomes and outcome_key:
        time.sleep(args.outcome_delay)
        counts = post_outcomes(args.url, outcome_key, result.application_ids, result.defaulted)
        summary["outcomes"] = {"world": risk.describe(), **dict(sorted(counts.items()))}
        bad += sum(v for k, v in counts.items() if k.startswith("http_5"))
    print(json.dumps(summary))
    return EXIT_DRIFT if bad else EXIT_OK


def run_demo_command(args: argparse.Namespace) -> int:
    import contextlib
    import random

    from monitoring.artifacts import load_feature_spec
    from monitoring.demo import new_api_key, new_demo_logs, running_api
    from monitoring.simulate import combine, simulate

    try:
        shift = combine(args.drift or ["income"])
    except ValueError as exc:
        return _fail(str(exc))
    if args.n < 2:
        return _fail("--n must be at least 2")
    if not args.model.is_file():
        return _fail(f"model not found: {args.model} (make model)")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    if args.url:
        api_key = args.api_key or next((k.strip() for k in os.environ.get("API_KEY", "").split(",") if k.strip()), "")
        if not api_key:
            return _fail("no API key for --url: pass --api-key or set API_KEY")
        logs = args.logs or Path(os.environ.get("PREDICTION_LOG_DIR", "logs"))
        api: Any = contextlib.nullcontext(args.url)
    else:
        api_key = new_api_key()
        logs = args.logs or new_demo_logs(Path.cwd())
        api = running_api(args.model, logs, api_key)
    spec = load_feature_spec(args.model)
    with api as url:
        print(f"API {url}, log folder {logs}, seed {seed}", file=sys.stderr)
        half = args.n // 2
        options = {"concurrency": args.concurrency, "progress": not args.no_progress}
        plain = simulate(url, api_key, half, spec, seed=seed, invalid_share=args.invalid_share, **options)
        shifted = simulate(url, api_key, args.n - half, spec, seed=seed + 1, shift=shift, **options)
    print(json.dumps({"unshifted": plain.summary(), "shifted": {"shift": shift.describe(), **shifted.summary()}}))
    args.logs, args.quick, args.json = logs, False, False
    args.threshold = args.min_drifted_columns = args.num_method = args.cat_method = args.missing_tolerance = None
    return run_drift_command(args)


def run_calibrate_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from monitoring.calibrate import default_jobs, rates_table, run_calibration, to_markdown

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        return _fail(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    results = run_calibration(
        args.windows,
        sizes,
        baseline_windows=args.baseline_windows,
        model=args.model,
        reference=args.reference,
        jobs=args.jobs or default_jobs(),
    )
    command = "python -m monitoring " + shlex.join(argv)
    markdown = to_markdown(results, command)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown)
    if args.csv:
        results.to_csv(args.csv, index=False)
    print(rates_table(results).to_string(index=False))
    return EXIT_OK


def run_calibrate_performance_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from monitoring.calibrate_performance import rates, run_performance_calibration, to_markdown

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        return _fail(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    if args.windows < 1 or not sizes or min(sizes) < 100:
        return _fail("--windows must be >= 1 and every size >= 100")
    try:
        results = run_performance_calibration(args.windows, sizes, args.model, args.reference, jobs=args.jobs)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    markdown = to_markdown(results, "python -m monitoring " + shlex.join(argv))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as handle:
            handle.write("\n" + markdown)
    if args.csv:
        results.to_csv(args.csv, index=False)
    print(rates(results).to_string(index=False))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.command == "drift":
        return run_drift_command(args)
    if args.command == "simulate":
        return run_simulate_command(args)
    if args.command == "demo":
        return run_demo_command(args)
    if args.command == "performance":
        return run_performance_command(args)
    if args.command == "outcomes":
        return run_outcomes_command(args)
    if args.command == "calibrate-performance":
        return run_calibrate_performance_command(args, argv)
    return run_calibrate_command(args, argv)


if __name__ == "__main__":
    sys.exit(main())
