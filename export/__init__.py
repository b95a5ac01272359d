"""Export: the registered MLflow pipeline -> one verified, self-describing ONNX artifact."""
