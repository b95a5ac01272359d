"""Portfolio scoring on Apache Spark: the exported ONNX artifact and the API's contract code.

`python -m batch score --input FILE --output DIR` validates every row with the API's request
models, encodes it in the model's spec order and scores it with one onnxruntime session per
executor process (the artifact is shipped with `--files` or `SparkContext.addFile`). Local
Parquet is read by the executors in pyarrow slices (`batch.parquet_slices`), anything else by
Spark's reader; both end in `batch.executor.ScoreBatches.score`. Executors need the
batch requirements only (PySpark, pyarrow, onnxruntime, pydantic): no LightGBM, scikit-learn
or MLflow. Never imports `inference`.
"""
