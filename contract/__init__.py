"""What the stages agree on: the feature spec, the artifact's metadata, the row encoder, names.

Training writes the spec into the artifact, export writes the metadata, the API builds its
request schema from them, monitoring types its columns with them and the batch job encodes
with them. Standard library, NumPy, pydantic and onnxruntime only: the serving image imports this package.
"""
