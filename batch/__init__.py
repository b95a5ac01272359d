"""Portfolio scoring on Apache Spark: the exported ONNX artifact and the API's contract code.

`python -m batch score --input FILE --output DIR` validates every row with the API's rules
(`batch.columns`, the request models for the rows they flag), encodes it in the model's spec
order and scores it with one onnxruntime session per executor process (the artifact is shipped
with `--files` or `SparkContext.addFile`, or read in place on a local master); `--reasons` adds
the API's reasons to each refusal (`batch.reasons`). Local Parquet is read by the executors in
pyarrow slices (`batch.parquet_slices`), anything else by Spark's reader; a local output is written by the
executors in parts the driver commits (`batch.parts`), anything else by Spark's writer; all of
them end in `batch.executor.Scoring.score`. On a local master the Python workers are forked from
`batch.daemon`, which imports PySpark and the job's libraries once, before the fork. Executors
need the batch requirements only (PySpark, pyarrow, onnxruntime, pydantic): no LightGBM,
scikit-learn or MLflow. Never imports `inference`.
"""
