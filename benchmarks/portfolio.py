"""Portfolio benchmark: N generated applicants scored three ways on the same machine, in one run.

    python -m benchmarks.portfolio                      # 1,000,000 applicants, local[*]
    python -m benchmarks.portfolio --rows 5000 --out /tmp/portfolio.json   # a smoke run
    python -m benchmarks.portfolio --repeat 3          # three interleaved rounds, the median reported

- `job`: `python -m batch score` (batch.job.score_portfolio on the session `session_for` builds:
  workers forked from the preloading `batch.daemon`, a JVM that maps `batch.class_archive`, whose
  first run records it after the timing): API validation, ONNX, one onnxruntime session per Python
  worker, Arrow batches; writes scored/ and rejects/.
- `spark_udf`: `mlflow.pyfunc.spark_udf` on the registered champion (the scikit-learn pipeline
  and LightGBM in every worker), same Spark master, same input, PySpark's own daemon (as anyone
  calling spark_udf runs it); writes id + probability.
- `loop`: one Python process, no Spark: the job's executor code (pyarrow slices, batch.columns,
  Scorer, its own Parquet parts and their commit) over the same file; writes the same outputs.

Each path runs in its own child process so its peak memory (RSS of the process and its children:
the JVM and Spark's Python workers included, sampled every 0.2 s; PSS read again at each 1% of
growth, since reading it costs the measured processes CPU) is its own; rows/s counts from the
moment the path has its session (Spark start-up is reported apart), and again from before the
session was asked for (`end_to_end_rows_per_s`: what a path does during start-up is not off the
clock there).
The model: the project's champion if `make model` ran here (mlruns/), else `--tracking-uri` of a
store holding one, else a quick model trained with the project's training code into a temporary
MLflow store (benchmarks.models).
Results: benchmarks/results/portfolio.json; the table in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info, memory_mb, process_tree, rss_mb, versions
from benchmarks.models import MODEL_URI, PROJECT_ARTIFACT, RESULTS_DIR, BenchModel, artifact_run_id, resolve

logger = logging.getLogger(__name__)

PATHS = ("job", "spark_udf", "loop")
DEFAULT_ROWS = 1_000_000
SEED = 2026
SAMPLE_EVERY_S = 0.2
PSS_REREAD_GROWTH = 1.01


# --- the parent: data, model, one child per path, the summary -------------------------------------


def generate_portfolio(rows: int, target: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.synthetic import generate

    frame = generate(rows, seed=SEED, progress=logger.info).drop(
        columns=["TARGET", "TRUE_PROBABILITY"], errors="ignore"
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), target, row_group_size=100_000)
    logger.info(f"wrote {rows:,} applicants to {target} ({target.stat().st_size / 1e6:.0f} MB)")
    return target


def model_from_store(tracking_uri: str, artifact: Path) -> BenchModel:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    version = mlflow.MlflowClient().get_model_version_by_alias("credit-scoring", "champion")
    if artifact_run_id(artifact) != version.run_id:
        raise SystemExit(f"{artifact} was not exported from the champion of {tracking_uri} (run {version.run_id})")
    return BenchModel("store", tracking_uri, MODEL_URI, artifact, version.run_id, str(version.version))


def run_child(path: str, data: Path, model: BenchModel, master: str, work: Path) -> dict[str, Any]:
    """Run one path in a child process; sample its process tree's memory until it ends."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.portfolio",
        "_child",
        path,
        "--data",
        str(data),
        "--artifact",
        str(model.artifact),
        "--tracking-uri",
        model.tracking_uri,
        "--master",
        master,
        "--work",
        str(work / path),
    ]
    logger.info(f"{path}: starting")
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = {"rss_mb": 0.0, "pss_mb": 0.0}
    cpu_ticks: dict[int, int] = {}  # per process of the tree, its latest user + system ticks
    stop = threading.Event()

    def sample() -> None:
        pss_read_at = 0.0  # the RSS when PSS was last read
        while not stop.is_set():
            tree = process_tree(child.pid)  # walked once a sample: its RSS and its CPU ticks
            rss = rss_mb(tree)
            peak["rss_mb"] = max(peak["rss_mb"], rss)
            # PSS costs the measured processes 15-30 ms of CPU a read, RSS next to nothing: read PSS
            # again only once the RSS has grown past PSS_REREAD_GROWTH of the last read (§24).
            if rss > pss_read_at * PSS_REREAD_GROWTH:
                now = memory_mb(child.pid)
                pss_read_at = now["rss_mb"]
                peak["pss_mb"] = max(peak["pss_mb"], now["pss_mb"])
            for pid in tree:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                cpu_ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
            stop.wait(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    stop.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{path} failed (exit {child.returncode}); its output is above")
    wait_until_gone(cpu_ticks.keys())  # the next path starts on a machine its JVM has left
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    cpu_s = sum(cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")
    found |= {
        "wall_s": round(time.perf_counter() - started, 2),
        "cpu_s": round(cpu_s, 1),  # the whole process tree (JVM, Python workers), start-up included
        "rows_per_cpu_s": round(found["rows"] / cpu_s) if cpu_s else None,
        "peak_rss_mb": peak["rss_mb"],
        "peak_pss_mb": peak["pss_mb"],
    }
    logger.info(
        f"{path}: {found['rows_per_s']:,.0f} rows/s, {found['rows_per_cpu_s'] or 0:,.0f} rows per CPU-second, "
        f"peak RSS {found['peak_rss_mb']:,.0f} MB"
    )
    return found


def wait_until_gone(pids: Iterable[int], timeout_s: float = 30.0) -> None:
    """Wait while any of `pids` still runs: a child's JVM goes on exiting for a second or more after it."""
    deadline = time.monotonic() + timeout_s
    running = [pid for pid in pids if _alive(pid)]
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [pid for pid in running if _alive(pid)]
    if running:
        logger.warning(f"processes {running} still run {timeout_s:.0f} s after their path ended")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its entry waits for its parent


def median_round(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rows/s (the lower middle one for an even count), and every round's rows/s."""
    ranked = sorted(found, key=lambda run: run["rows_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "rounds_rows_per_s": [run["rows_per_s"] for run in found]}


def agreement(work: Path) -> dict[str, float]:
    """How far the three paths' probabilities are apart (ONNX vs LightGBM: float32 vs float64 sums)."""
    import pandas as pd

    job = pd.read_parquet(work / "job" / "scored", columns=["SK_ID_CURR", "probability"])
    found: dict[str, float] = {}
    for other in ("spark_udf", "loop"):
        folder = work / other / ("scored" if other == "loop" else "out")
        if not folder.exists():
            continue
        theirs = pd.read_parquet(folder, columns=["SK_ID_CURR", "probability"])
        both = job.merge(theirs, on="SK_ID_CURR", suffixes=("", "_other"))
        found[f"max_abs_diff_job_vs_{other}"] = float((both["probability"] - both["probability_other"]).abs().max())
        found[f"rows_compared_job_vs_{other}"] = len(both)
    return found


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")  # progress
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portfolio", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="generated applicants (default %(default)s)")
    parser.add_argument("--master", default="local[*]", help="Spark master for both Spark paths (default %(default)s)")
    parser.add_argument("--paths", default=",".join(PATHS), help="which paths, in order (default %(default)s)")
    parser.add_argument("--tracking-uri", help="an MLflow store with a champion (with --artifact exported from it)")
    parser.add_argument("--artifact", type=Path, help="the ONNX artifact exported from that champion")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "portfolio.json", help="(default %(default)s)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every path, interleaved; the median round is reported"
    )
    args = parser.parse_args(argv)
    paths = [p for p in args.paths.split(",") if p]
    if unknown := set(paths) - set(PATHS):
        parser.error(f"unknown path(s) {sorted(unknown)}; choose among {', '.join(PATHS)}")

    with tempfile.TemporaryDirectory(prefix="portfolio-bench-") as tmp:
        root = Path(tmp)
        if args.tracking_uri and args.artifact:
            model = model_from_store(args.tracking_uri, args.artifact)
        elif "spark_udf" in paths:
            model = resolve(root / "model")
        else:  # no MLflow path: the committed artifact is enough
            model = BenchModel("artifact", "", MODEL_URI, PROJECT_ARTIFACT, artifact_run_id(PROJECT_ARTIFACT), "")
        logger.info(f"model: {model.describe()}")
        data = generate_portfolio(args.rows, root / "portfolio.parquet")
        rounds: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
        for number in range(args.repeat):  # interleaved: a passing load spike hits every path alike
            for path in paths:
                logger.info(f"round {number + 1}/{args.repeat}")
                work = root / "runs" if number == args.repeat - 1 else root / f"runs-{number}"
                rounds[path].append(run_child(path, data, model, args.master, work))
        results = {path: median_round(found) for path, found in rounds.items()}
        checks = agreement(root / "runs") if "job" in results else {}

    summary: dict[str, Any] = {
        "command": "python -m benchmarks.portfolio " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": args.rows,
        "master": args.master,
        "model": {"kind": model.kind, "uri": model.model_uri, "version": model.model_version, "run_id": model.run_id},
        "paths": results,
        "agreement": checks,
        "machine": machine_info(),
        "versions": versions(),
    }
    if "job" in results and "spark_udf" in results:
        summary["job_over_spark_udf_rows_per_s"] = round(
            results["job"]["rows_per_s"] / results["spark_udf"]["rows_per_s"], 2
        )
        summary["job_over_spark_udf_end_to_end_rows_per_s"] = round(  # session start-up included (`timings`)
            results["job"]["end_to_end_rows_per_s"] / results["spark_udf"]["end_to_end_rows_per_s"], 2
        )
    if "job" in results and "spark_udf" in results and results["spark_udf"]["rows_per_cpu_s"]:
        summary["job_over_spark_udf_rows_per_cpu_s"] = round(
            results["job"]["rows_per_cpu_s"] / results["spark_udf"]["rows_per_cpu_s"], 2
        )
    if "job" in results and "loop" in results:
        summary["job_over_loop_rows_per_s"] = round(results["job"]["rows_per_s"] / results["loop"]["rows_per_s"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    logger.info(f"wrote {args.out}")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("machine", "versions")}, indent=2))
    return 0


# --- the children: one path each, a JSON line on stdout -------------------------------------------


def child_job(data: Path, artifact: Path, master: str, work: Path) -> dict[str, Any]:
    from batch.job import JobConfig, score_portfolio, session_for, stop_session

    config = JobConfig(input=str(data), output=str(work), model=artifact)
    started = time.perf_counter()
    spark = session_for(config, master, app_name="portfolio-bench-job")  # as `python -m batch score` builds it
    ready = time.perf_counter()
    result = score_portfolio(spark, config, log=logger.info)
    done = time.perf_counter()
    stop_session(spark, logger.info)  # the first run saves the JVM's class archive (outside the timing)
    counts = result.counts
    return {"rows": counts.read, "scored": counts.scored, "rejected": counts.rejected} | timings(
        counts.read, started, ready, done
    )


def child_spark_udf(data: Path, tracking_uri: str, master: str, work: Path) -> dict[str, Any]:
    import mlflow
    from pyspark.sql import functions as F  # noqa: N812

    from batch.job import build_session
    from training.schema import feature_columns

    started = time.perf_counter()
    spark = build_session(master, app_name="portfolio-bench-spark-udf")
    ready = time.perf_counter()
    mlflow.set_tracking_uri(tracking_uri)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # the workers load the model too
    predict = mlflow.pyfunc.spark_udf(spark, MODEL_URI, result_type="array<double>", env_manager="local")
    frame = spark.read.parquet(str(data))
    columns = feature_columns()
    scored = frame.select("SK_ID_CURR", predict(F.struct(*columns))[1].alias("probability"))
    scored.write.mode("overwrite").parquet(str(work / "out"))
    done = time.perf_counter()
    rows = spark.read.parquet(str(work / "out")).count()
    spark.stop()
    return {"rows": rows} | timings(rows, started, ready, done)


def child_loop(data: Path, artifact: Path, work: Path) -> dict[str, Any]:
    """The job's executor code (read, validate, score, write its parts, commit) in this one process."""
    from batch.executor import Scoring, runtime_for
    from batch.parquet_slices import ScoreSlices, open_input, text_columns
    from batch.parts import commit, new_staging

    started = time.perf_counter()
    runtime = runtime_for(str(artifact))
    ready = time.perf_counter()
    source = open_input(str(data))
    spec = runtime.scorer.metadata.feature_spec
    scoring = Scoring(
        str(artifact), "SK_ID_CURR", source.schema.field("SK_ID_CURR").type, staging=new_staging(str(work))
    )
    tasks = ScoreSlices(scoring, source.slices, (*spec.names, "SK_ID_CURR"), text_columns(source.schema, spec))
    reports = list(tasks.parts(range(len(source.slices))))
    committed = commit(str(work), str(scoring.staging), reports, scoring.schemas())
    done = time.perf_counter()
    return {"rows": source.num_rows, "scored": committed.scored, "rejected": committed.rejected} | timings(
        source.num_rows, started, ready, done
    )


def timings(rows: int, started: float, ready: float, done: float) -> dict[str, Any]:
    """Rows/s from the session ready (`rows_per_s`) and from before it was asked for (`end_to_end_rows_per_s`).

    The second counts what a path does while its session starts, so work moved out of the first
    clock into start-up shows there as a cost, not as a gain.
    """
    return {
        "seconds": round(done - ready, 2),
        "rows_per_s": round(rows / (done - ready)),
        "startup_s": round(ready - started, 2),
        "end_to_end_s": round(done - started, 2),
        "end_to_end_rows_per_s": round(rows / (done - started)),
    }


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portfolio _child")
    parser.add_argument("path", choices=PATHS)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--master", required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.path == "job":
        found = child_job(args.data, args.artifact, args.master, args.work)
    elif args.path == "spark_udf":
        found = child_spark_udf(args.data, args.tracking_uri, args.master, args.work)
    else:
        found = child_loop(args.data, args.artifact, args.work)
    print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        sys.exit(child(sys.argv[2:]))
    sys.exit(main())
