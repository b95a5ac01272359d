"""The scoring service: FastAPI + onnxruntime, nothing from training."""

SERVICE_NAME = "credit-scoring-api"
__version__ = "1.0.0"  # keep in step with pyproject.toml
