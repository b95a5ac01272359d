"""MLflow scikit-learn pipeline -> ONNX graph.

The pipeline's `encode` step (DataFrame -> level codes) stays outside the graph: the API does
it with `contract.encoding.RowEncoder` straight from the validated request. Everything after
it is converted: FeatureEngineer by the converter below, LightGBM by onnxmltools' converter.
Input: one float32 tensor `input` of shape [N, n_features]; output `probabilities` [N, 2].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from lightgbm import LGBMClassifier
from onnx import TensorProto
from onnxmltools.convert.lightgbm.operator_converters import LightGbm as lightgbm_converter
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.pipeline import Pipeline

from contract.explain import float32_at_most
from contract.features import DAYS_EMPLOYED_ANOMALY
from contract.metadata import INPUT_NAME, PROBABILITY_OUTPUT
from training.pipeline import FeatureEngineer, SpecEncoder

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def _feature_engineer_shape(operator) -> None:  # type: ignore[no-untyped-def]
    n_rows = operator.inputs[0].get_first_dimension()
    width = len(operator.raw_operator.get_feature_names_out())
    operator.outputs[0].type = FloatTensorType([n_rows, width])


def _feature_engineer_converter(scope, operator, container) -> None:  # type: ignore[no-untyped-def]
    """FeatureEngineer as ONNX ops, mirroring its NumPy float32 arithmetic step by step."""
    fe: FeatureEngineer = operator.raw_operator
    x = operator.inputs[0].full_name
    width = len(fe.columns)
    name = scope.get_unique_variable_name

    def constant(label: str, dtype: int, values: np.ndarray) -> str:
        tensor_name = name(label)
        container.add_initializer(tensor_name, dtype, list(values.shape), values.ravel().tolist())
        return tensor_name

    def node(op: str, inputs: list[str], label: str, **attrs: object) -> str:
        out = name(label)
        container.add_node(op, inputs, [out], name=scope.get_unique_operator_name(op), **attrs)
        return out

    # Compare against a row that is NaN everywhere but DAYS_EMPLOYED: NaN equals nothing,
    # so only the placeholder in that one column matches.
    probe = np.full((1, width), np.nan, dtype=np.float32)
    probe[0, fe.employed_index] = DAYS_EMPLOYED_ANOMALY
    is_anomaly = node("Equal", [x, constant("anomaly_probe", TensorProto.FLOAT, probe)], "is_anomaly")
    nan = constant("nan", TensorProto.FLOAT, np.array([np.nan], dtype=np.float32))
    cleaned = node("Where", [is_anomaly, nan, x], "cleaned")
    flag_bool = node(
        "Gather",
        [is_anomaly, constant("employed_idx", TensorProto.INT64, np.array([fe.employed_index], dtype=np.int64))],
        "flag_bool",
        axis=1,
    )
    flag = node("Cast", [flag_bool], "anomaly_flag", to=TensorProto.FLOAT)
    pairs = np.array(fe.ratio_indices(), dtype=np.int64)
    numerators = node("Gather", [cleaned, constant("num_idx", TensorProto.INT64, pairs[:, 0])], "num", axis=1)
    denominators = node("Gather", [cleaned, constant("den_idx", TensorProto.INT64, pairs[:, 1])], "den", axis=1)
    ratios = node("Div", [numerators, denominators], "ratios")
    container.add_node(
        "Concat",
        [cleaned, flag, ratios],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Concat"),
        axis=1,
    )


def float32_threshold(threshold: float) -> float:
    """The largest float32 not above `threshold`.

    LightGBM compares a feature with a float64 threshold; ONNX trees hold float32 thresholds.
    onnxmltools rounds to the nearest float32, which can land just above the float64 value and
    send a row equal to it down the wrong branch. For a float32 input x,
    x <= t  <=>  x <= float32_threshold(t), so rounding down keeps every decision.
    """
    return float(float32_at_most(np.asarray(threshold, np.float64)))


def _round_thresholds_down(node: dict) -> None:
    stack = [node]
    while stack:
        current = stack.pop()
        if "split_feature" in current:
            if current.get("decision_type") == "<=":
                current["threshold"] = float32_threshold(float(current["threshold"]))
            stack += [current["left_child"], current["right_child"]]


def _dump_with_float32_thresholds(booster, *args, **kwargs):  # type: ignore[no-untyped-def]
    dump, info = _original_dump(booster, *args, **kwargs)
    for tree in dump["tree_info"]:
        _round_thresholds_down(tree["tree_structure"])
    return dump, info


_original_dump = lightgbm_converter.dump_booster_model


def _convert_lightgbm(scope, operator, container) -> None:  # type: ignore[no-untyped-def]
    """onnxmltools' LightGBM converter, fed a dump whose thresholds are safe in float32."""
    lightgbm_converter.dump_booster_model = _dump_with_float32_thresholds
    try:
        lightgbm_converter.convert_lightgbm(scope, operator, container)
    finally:
        lightgbm_converter.dump_booster_model = _original_dump


def register_converters() -> None:
    update_registered_converter(
        FeatureEngineer, "CreditScoringFeatureEngineer", _feature_engineer_shape, _feature_engineer_converter
    )
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def graph_part(pipeline: Pipeline) -> Pipeline:
    """The pipeline without its leading SpecEncoder: the part that becomes the ONNX graph."""
    first_name, first = pipeline.steps[0]
    if not isinstance(first, SpecEncoder):
        raise TypeError(f"expected the pipeline to start with a SpecEncoder, found {first_name}={first!r}")
    return Pipeline(pipeline.steps[1:])


def to_onnx(pipeline: Pipeline) -> onnx.ModelProto:
    """Convert the fitted pipeline (without its encoder) to ONNX, float32 in, no ZipMap."""
    register_converters()
    encoder: SpecEncoder = pipeline.steps[0][1]
    n_features = len(encoder.columns)
    model = convert_sklearn(
        graph_part(pipeline),
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        options={LGBMClassifier: {"zipmap": False}},
        final_types=None,
    )
    outputs = [o.name for o in model.graph.output]
    if PROBABILITY_OUTPUT not in outputs:
        raise RuntimeError(f"converted graph has outputs {outputs}, expected {PROBABILITY_OUTPUT!r}")
    _trees_summed_in_double(model)
    return model


# Trees summed in float32 by one tree node; the partial sums add up in float64. Measured on the
# committed model (100,000 rows): max log-odds error 1.3e-6 at 30 (3 nodes), 5.9e-7 at 8 (11
# nodes, 3x slower for one row), 3.2e-6 for one node; the classifier node it replaces: 1.2e-5.
TREES_PER_SUM = 30


def _trees_summed_in_double(model: onnx.ModelProto) -> None:
    """Replace the classifier's tree node by regressor nodes summed in float64, then a float64 logistic.

    onnxruntime sums every tree of one node in float32 (up to ~1e-5 log-odds off over ~90 trees
    at a score of -5) and its logistic post-transform computes 1 - 1/(1 + e^|x|), which cancels
    for small probabilities. Both exceed the reasons' additivity limit (the served log-odds must
    equal base + contributions within 1e-5). Groups of TREES_PER_SUM trees keep each float32
    sum short; their results are cast to float64, added, and put through Sigmoid in float64.
    (Regressor nodes also score one row faster than the classifier node: 14 vs 27 us measured.)
    The outputs keep their names, shapes and types: `label` int64 [N] (score > 0, i.e. p > 0.5)
    and `probabilities` float32 [N, 2].
    """
    trees = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(trees) != 1:
        raise RuntimeError(f"expected one TreeEnsembleClassifier, found {len(trees)}")
    tree = trees[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in tree.attribute}
    if attrs.get("post_transform") != b"LOGISTIC" or set(attrs["class_ids"]) != {0}:
        raise RuntimeError("expected a binary classifier with a LOGISTIC post-transform")
    label_out, probability_out = tree.output
    x = tree.input[0]
    node_keys = [k for k in attrs if k.startswith("nodes_")]
    tree_ids = sorted(set(attrs["nodes_treeids"]))
    new_nodes = []
    partial_sums = []
    for group, start in enumerate(range(0, len(tree_ids), TREES_PER_SUM)):
        subset = set(tree_ids[start : start + TREES_PER_SUM])
        nodes = [i for i, t in enumerate(attrs["nodes_treeids"]) if t in subset]
        leaves = [i for i, t in enumerate(attrs["class_treeids"]) if t in subset]
        regressor_attrs: dict[str, Any] = {
            "n_targets": 1,
            "aggregate_function": "SUM",
            "post_transform": "NONE",
            "target_ids": [0] * len(leaves),
            "target_nodeids": [attrs["class_nodeids"][i] for i in leaves],
            "target_treeids": [attrs["class_treeids"][i] for i in leaves],
            "target_weights": [attrs["class_weights"][i] for i in leaves],
            **{k: [attrs[k][i] for i in nodes] for k in node_keys},
        }
        regressor = onnx.helper.make_node(
            "TreeEnsembleRegressor",
            [x],
            [f"trees{group}"],
            name=f"trees{group}",
            domain="ai.onnx.ml",
            **regressor_attrs,
        )
        cast = onnx.helper.make_node("Cast", [f"trees{group}"], [f"trees{group}_f64"], to=TensorProto.DOUBLE)
        new_nodes += [regressor, cast]
        partial_sums.append(f"trees{group}_f64")
    base = float(attrs.get("base_values", [0.0])[0]) if attrs.get("base_values") else 0.0
    zero = onnx.helper.make_tensor("score_zero", TensorProto.DOUBLE, [], [0.0])
    offset = onnx.helper.make_tensor("score_base", TensorProto.DOUBLE, [], [base])
    flat = onnx.helper.make_tensor("label_shape", TensorProto.INT64, [1], [-1])
    model.graph.initializer.extend([zero, offset, flat])
    new_nodes += [
        onnx.helper.make_node("Sum", [*partial_sums, "score_base"], ["score"], name="score_in_float64"),
        onnx.helper.make_node("Neg", ["score"], ["minus_score"]),
        onnx.helper.make_node("Concat", ["minus_score", "score"], ["scores"], axis=1),
        onnx.helper.make_node("Sigmoid", ["scores"], ["probabilities_f64"], name="logistic_in_float64"),
        onnx.helper.make_node("Cast", ["probabilities_f64"], [probability_out], to=TensorProto.FLOAT),
        onnx.helper.make_node("Greater", ["score", "score_zero"], ["label_bool"]),
        onnx.helper.make_node("Cast", ["label_bool"], ["label_2d"], to=TensorProto.INT64),
        onnx.helper.make_node("Reshape", ["label_2d", "label_shape"], [label_out]),
    ]
    nodes = list(model.graph.node)
    at = nodes.index(tree)
    del model.graph.node[:]
    model.graph.node.extend([*nodes[:at], *new_nodes, *nodes[at + 1 :]])  # stays topologically sorted
