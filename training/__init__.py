"""Training: Home Credit data (real or synthetic), feature spec, pipeline, threshold, MLflow."""
