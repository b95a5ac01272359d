"""`python -m batch`: portfolio scoring on Spark, and the code zip for spark-submit.

    python -m batch score --input FILE --output DIR [--master local[*]] [--reasons [--reasons-count N]]
    python -m batch package --out dist     # contract/ + batch/ as one zip for --py-files

Exit codes: 0 done, 2 bad input (unreadable or malformed file, a column missing, output in
the way, an unusable model, --reasons with an artifact that carries no explainer), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from contract.explain import DEFAULT_REASONS, MAX_REASONS
from contract.names import DEFAULT_MODEL_PATH

EXIT_INPUT = 2
LOCAL_MASTER = "local[*]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batch", description="Portfolio scoring on Apache Spark.")
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score a CSV or Parquet file into DIR/scored and DIR/rejects")
    score.add_argument("--input", required=True, help="CSV or Parquet file (or Parquet folder); any Spark path")
    score.add_argument("--output", required=True, help="output folder: scored/, rejects/, summary.json")
    score.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="ONNX artifact (default %(default)s)")
    score.add_argument("--master", default=None, help="Spark master (default local[*]; spark-submit sets it)")
    score.add_argument("--format", choices=("csv", "parquet"), help="input format (default: from the file name)")
    score.add_argument(
        "--spark-reader",
        action="store_true",
        help="read local Parquet through Spark's reader instead of per-executor pyarrow slices (slower)",
    )
    score.add_argument(
        "--spark-writer",
        action="store_true",
        help="write a local output through Spark's writer instead of per-task pyarrow parts (slower)",
    )
    score.add_argument("--overwrite", action="store_true", help="replace DIR/scored and DIR/rejects")
    score.add_argument(
        "--reasons", action="store_true", help="add each refused applicant's reasons (the API's) to DIR/scored"
    )
    score.add_argument(
        "--reasons-count",
        type=_reasons_count,
        default=DEFAULT_REASONS,
        metavar="N",
        help=f"reasons per refused applicant, 1 to {MAX_REASONS} (default %(default)s, the API's REASONS_PER_REFUSAL)",
    )
    score.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")

    package = commands.add_parser("package", help="zip contract/ and batch/ for spark-submit --py-files")
    package.add_argument("--out", type=Path, default=Path("dist"), help="folder for the zip (default %(default)s)")

    args = parser.parse_args(argv)
    if args.command == "package":
        from batch.shipping import package_code

        print(package_code(args.out))
        return 0
    return _score(args)


def _reasons_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= count <= MAX_REASONS:
        raise argparse.ArgumentTypeError(f"{count} is not between 1 and {MAX_REASONS}")
    return count


def _score(args: argparse.Namespace) -> int:
    from batch.job import (
        InputError,
        JobConfig,
        check_local_paths,
        load_model,
        say,
        score_portfolio,
        session_for,
        stop_session,
    )

    config = JobConfig(
        input=args.input,
        output=args.output,
        model=args.model,
        input_format=args.format,
        overwrite=args.overwrite,
        spark_reader=args.spark_reader,
        spark_writer=args.spark_writer,
        reasons=args.reasons,
        reasons_count=args.reasons_count,
        progress_every_s=args.progress_every,
    )
    try:
        check_local_paths(config)  # before paying for a JVM
        scorer = load_model(config)
        # Under spark-submit (which starts the JVM first) its --master stands unless --master is given here.
        spark = session_for(config, args.master or (None if "PYSPARK_GATEWAY_PORT" in os.environ else LOCAL_MASTER))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        result = score_portfolio(spark, config, scorer=scorer)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    finally:
        stop_session(spark)  # the first run on a machine also saves the JVM's class archive
    counts = result.counts
    say(f"read {counts.read:,}, scored {counts.scored:,}, rejected {counts.rejected:,} in {result.seconds:.1f} s")
    print(json.dumps({"read": counts.read, "scored": counts.scored, "rejected": counts.rejected}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
