"""The model runtime: one onnxruntime session over the exported artifact.

`load()` opens and checks the artifact once; `predict_proba(rows)` is the whole model call.
No web framework here: the API, the batch job, monitoring and benchmarks all use it as is.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.encoding import RowEncoder
from contract.explain import Attributions, attribution_bound
from contract.metadata import (
    ATTRIBUTION_OUTPUTS,
    ATTRIBUTION_THRESHOLD_INPUT,
    INPUT_NAME,
    PROBABILITY_OUTPUT,
    MetadataError,
    ModelMetadata,
)

logger = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The artifact cannot be served; the message is one line saying why."""


class Scorer:
    """Scores encoded applicants with the ONNX model at `path`."""

    def __init__(self, path: Path | str, intra_op_threads: int = 1, inter_op_threads: int = 1) -> None:
        self.path = Path(path)
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self._session: ort.InferenceSession | None = None
        self._metadata: ModelMetadata | None = None
        self._encoder: RowEncoder | None = None
        self._run_options = ort.RunOptions()
        self._outputs = [PROBABILITY_OUTPUT]  # bound once: only the probabilities are fetched
        self._attributed_outputs = [PROBABILITY_OUTPUT, *ATTRIBUTION_OUTPUTS]
        self.attributes = False  # the graph computes TreeSHAP in the scoring run (export/shap_graph.py)
        # `attribution_threshold` fed to such a graph: above any probability (none attributed), the
        # decision threshold (the refused rows: set at load) or below any (every row).
        self._attribute_none: dict[str, np.ndarray] = {}
        self._attribute_refused: dict[str, np.ndarray] = {}
        self._attribute_every: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"Scorer(path={str(self.path)!r}, ready={self.ready})"

    @property
    def ready(self) -> bool:
        return self._session is not None

    @property
    def metadata(self) -> ModelMetadata:
        if self._metadata is None:
            raise RuntimeError("the model is not loaded")
        return self._metadata

    @property
    def encoder(self) -> RowEncoder:
        """Applicant fields -> input rows, following the artifact's own feature spec."""
        if self._encoder is None:
            raise RuntimeError("the model is not loaded")
        return self._encoder

    @property
    def threshold(self) -> float:
        return self.metadata.threshold

    def session_options(self) -> ort.SessionOptions:
        return latency_session_options(self.intra_op_threads, self.inter_op_threads)

    def load(self) -> None:
        """Open the artifact and check it honours the contract; raise ModelLoadError if not."""
        if not self.path.is_file():
            raise ModelLoadError(f"model file {self.path} does not exist or is not a file")
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {self.path}: {exc.strerror}") from None
        try:
            session = ort.InferenceSession(content, self.session_options(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own unrelated types (Fail, InvalidProtobuf, ...)
            raise ModelLoadError(f"{self.path} is not a valid ONNX model: {_first_line(exc)}") from None
        try:
            metadata = ModelMetadata.from_onnx_map(session.get_modelmeta().custom_metadata_map)
        except MetadataError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        _check_signature(session, len(metadata.feature_spec.model_inputs), self.path)
        encoder = RowEncoder(metadata.feature_spec)
        # A first run allocates ORT's buffers (so the first client does not pay for them) and
        # proves the artifact scores its own example.
        try:
            example = encoder.encode_one(metadata.feature_spec.example())
            probability = float(session.run(self._outputs, {INPUT_NAME: example})[0][0, 1])
        except Exception as exc:
            raise ModelLoadError(f"{self.path} fails to score its own example: {_first_line(exc)}") from None
        if not 0.0 <= probability <= 1.0 or math.isnan(probability):
            raise ModelLoadError(f"{self.path} gives a probability outside [0, 1] for its own example")
        self._session, self._metadata, self._encoder = session, metadata, encoder
        self.attributes = set(ATTRIBUTION_OUTPUTS) <= {o.name for o in session.get_outputs()} and any(
            i.name == ATTRIBUTION_THRESHOLD_INPUT for i in session.get_overridable_initializers()
        )
        if self.attributes:
            self._attribute_none = {ATTRIBUTION_THRESHOLD_INPUT: np.array(np.inf, np.float32)}
            self._attribute_refused = {ATTRIBUTION_THRESHOLD_INPUT: attribution_bound(metadata.threshold)}
            self._attribute_every = {ATTRIBUTION_THRESHOLD_INPUT: np.array(-np.inf, np.float32)}
        logger.debug("loaded %s", self.path)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Probability of default (class 1) for each float32 row, shape (n,)."""
        session = self._session
        if session is None:
            raise RuntimeError("the model is not loaded")
        # A graph that attributes is told to attribute no row: ORT runs every node, fetched or not.
        feeds = {INPUT_NAME: rows, **self._attribute_none}
        return session.run(self._outputs, feeds, self._run_options)[0][:, 1]

    def predict_attributed(self, rows: np.ndarray, every: bool = False) -> tuple[np.ndarray, Attributions | None]:
        """`predict_proba` and, when the graph computes them, TreeSHAP attributions, in one run:
        of the refused rows (probability >= the threshold, the decision's own comparison), or of
        every row when `every`. Older artifacts give None (the explainer then computes them)."""
        session = self._session
        if session is None:
            raise RuntimeError("the model is not loaded")
        if not self.attributes:
            return self.predict_proba(rows), None
        feeds = {INPUT_NAME: rows, **(self._attribute_every if every else self._attribute_refused)}
        probabilities, attributed, contributions, top, features = session.run(
            self._attributed_outputs, feeds, self._run_options
        )
        return probabilities[:, 1], Attributions(attributed[0], contributions, top, features)

    def decide(self, probabilities: list[float]) -> list[int]:
        """Decisions at the business threshold: 1 = refused, 0 = accepted."""
        threshold = self.threshold  # Python floats are float64: the same comparison as decide_many
        return [int(p >= threshold) for p in probabilities]

    def decide_many(self, probabilities: np.ndarray) -> np.ndarray:
        """`decide` for an array (int32): `p >= threshold` compared in float64, whatever the array's dtype."""
        return (probabilities.astype(np.float64, copy=False) >= self.threshold).astype(np.int32)

    def close(self) -> None:
        """Drop the session (readiness goes false)."""
        self._session = None


def latency_session_options(intra_op_threads: int = 1, inter_op_threads: int = 1) -> ort.SessionOptions:
    """Tuned for one-row latency: one thread, no spinning, sequential graph, all optimisations.

    Export scores its parity rows and reference sample with these options too: the thread
    count changes the order in which the trees are summed, hence the last bits of a score.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Busy-waiting threads buy microseconds but burn a core each between requests.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: the model's warnings are export's business
    return options


def _check_signature(session: ort.InferenceSession, width: int, path: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if INPUT_NAME not in inputs or len(inputs) != 1:
        raise ModelLoadError(f"{path}: expected one input named {INPUT_NAME!r}, found {sorted(inputs)}")
    model_input = inputs[INPUT_NAME]
    if model_input.type != "tensor(float)" or model_input.shape[-1] != width:
        raise ModelLoadError(
            f"{path}: input {INPUT_NAME!r} is {model_input.type} {model_input.shape}, "
            f"expected tensor(float) [N, {width}] for the {width} model inputs of its spec"
        )
    if PROBABILITY_OUTPUT not in outputs:
        raise ModelLoadError(f"{path}: no output named {PROBABILITY_OUTPUT!r} (found {sorted(outputs)})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
