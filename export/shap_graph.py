"""TreeSHAP inside the served ONNX graph: the attributions come out of the same `run` as the score.

Within one tree, path-dependent TreeSHAP depends on a row only through the outcome of each split
test (export/treeshap.py tabulates the SHAP vector of every outcome pattern). That is itself a
decision tree: a complete binary tree whose level j tests the tree's split j and whose leaf p
adds row p of the tree's table to the features it splits on. One ai.onnx.ml TreeEnsembleRegressor
holds all of them (one per served tree, n_targets = the model features), fed the model-feature
tensor the trees read: ORT evaluates it in one kernel (~25 us a row measured, against ~55 us for
the dozen NumPy calls of `Explainer._pass` in the service). Only the rows asked for reach it
(`Compress` by probability >= `attribution_threshold`, default the refusal threshold).

The split tests are the explainer's own (`Explainer._lay_out_trees`): `sign * x <= bound` in
float32, which is `x <= bound` (BRANCH_LEQ) or `x >= -bound` (BRANCH_GTE); NaN fails both, as it
gives bit 0 there. The tables stay float64 (weights as tensors, so the sums are in double);
ORT's regressor output is float32, so each contribution is rounded once to float32 (measured
<= 6e-8 log-odds from the float64 sum; the export's proof bounds it against LightGBM).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from contract.explain import MAX_REASONS, Explainer, attribution_bound
from contract.metadata import (
    ATTRIBUTED_ROWS_OUTPUT,
    ATTRIBUTION_OUTPUTS,
    ATTRIBUTION_THRESHOLD_INPUT,
    CONTRIBUTIONS_OUTPUT,
    MODEL_FEATURES_OUTPUT,
    PROBABILITY_OUTPUT,
    TOP_FEATURES_OUTPUT,
)


class AttributionGraphError(RuntimeError):
    """The served graph has no single model-feature tensor to attach the attributions to."""


def model_features_tensor(model: onnx.ModelProto) -> str:
    """The tensor every scoring tree reads: the FeatureEngineer converter's output."""
    inputs = {n.input[0] for n in model.graph.node if n.op_type == "TreeEnsembleRegressor"}
    if len(inputs) != 1:
        raise AttributionGraphError(f"expected the scoring trees to read one tensor, found {sorted(inputs)}")
    return inputs.pop()


def add_attributions(model: onnx.ModelProto, explainer: Explainer, threshold: float) -> None:
    """Add the outputs, for the rows whose probability of default is at least the input
    `attribution_threshold` (float32 scalar, by default `attribution_bound(threshold)`: the refused
    rows), and only them: `attributed_rows` (1, m) int64 (their indices in the input, ascending:
    NonZero's shape), `contributions` (m, n_features) float32 log-odds, `top_features` (m, MAX_REASONS)
    int64 (largest contribution first, ties by lower feature index: ONNX TopK's rule, like a stable
    sort) and `model_features` (m, n_features) float32
    (the values the trees compared).

    Attributing only the rows asked for is what keeps an accepted applicant's run (and a batch
    scored without reasons, fed a threshold above 1) at the cost of the graph without TreeSHAP:
    ORT runs every node whatever outputs are fetched, and the attribution node on every row cost
    3x the scoring trees on a batch (measured: 6.7 against 2.2 us a row)."""
    features = model_features_tensor(model)
    layout = explainer.layout()
    if layout["zero_missing"].any():  # |x| <= 1e-35 taking the default way is not one comparison
        raise AttributionGraphError("zero-as-missing splits are not laid out as graph nodes")
    if PROBABILITY_OUTPUT not in {o.name for o in model.graph.output}:
        raise AttributionGraphError(f"the graph has no {PROBABILITY_OUTPUT!r} output to select the rows by")
    n_features = explainer.n_features
    attrs = _pattern_trees(layout, n_features)
    graph = model.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([MAX_REASONS], np.int64), "attribution_k"),
            numpy_helper.from_array(np.array(1, np.int64), "default_class"),  # a scalar: Gather drops the axis
            # An initializer that is also a graph input: a default the caller may override.
            numpy_helper.from_array(attribution_bound(threshold), ATTRIBUTION_THRESHOLD_INPUT),
        ]
    )
    graph.input.append(helper.make_tensor_value_info(ATTRIBUTION_THRESHOLD_INPUT, TensorProto.FLOAT, []))
    graph.node.extend(
        [
            # The decision's own comparison (`attribution_bound`), in as few kernels as it takes: each
            # costs a few microseconds on a single row between requests.
            helper.make_node("Gather", [PROBABILITY_OUTPUT, "default_class"], ["default_probability"], axis=1),
            helper.make_node("GreaterOrEqual", ["default_probability", ATTRIBUTION_THRESHOLD_INPUT], ["attributed"]),
            helper.make_node("NonZero", ["attributed"], [ATTRIBUTED_ROWS_OUTPUT]),
            helper.make_node("Compress", [features, "attributed"], [MODEL_FEATURES_OUTPUT], axis=0),
            helper.make_node("Cast", [MODEL_FEATURES_OUTPUT], ["model_features_f64"], to=TensorProto.DOUBLE),
            helper.make_node(
                "TreeEnsembleRegressor",
                ["model_features_f64"],
                [CONTRIBUTIONS_OUTPUT],
                name="treeshap",
                domain="ai.onnx.ml",
                n_targets=n_features,
                aggregate_function="SUM",
                post_transform="NONE",
                **attrs,
            ),
            helper.make_node(
                "TopK",
                [CONTRIBUTIONS_OUTPUT, "attribution_k"],
                ["top_contributions", TOP_FEATURES_OUTPUT],
                axis=1,
                largest=1,
                sorted=1,
            ),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info(ATTRIBUTED_ROWS_OUTPUT, TensorProto.INT64, [1, None]),
            helper.make_tensor_value_info(CONTRIBUTIONS_OUTPUT, TensorProto.FLOAT, [None, n_features]),
            helper.make_tensor_value_info(TOP_FEATURES_OUTPUT, TensorProto.INT64, [None, MAX_REASONS]),
            helper.make_tensor_value_info(MODEL_FEATURES_OUTPUT, TensorProto.FLOAT, [None, n_features]),
        ]
    )


def _pattern_trees(layout: dict[str, np.ndarray], n_features: int) -> dict[str, Any]:
    """TreeEnsembleRegressor attributes: per served tree, nodes 0..2^depth-2 in breadth-first order
    (level j tests split j; the true child sets bit j), then its 2^depth leaves, leaf p = pattern p."""
    feature, sign, bound = layout["node_feature"], layout["node_sign"], layout["node_bound"]
    table, slot_feature = layout["table"], layout["slot_feature"]
    n_trees, depth = feature.shape
    patterns = 2**depth
    internal = patterns - 1
    level = np.floor(np.log2(np.arange(internal) + 1)).astype(np.int64)  # of each internal node
    prefix = np.arange(internal) - (2**level - 1)  # the bits of the levels above it
    true_child = 2 ** (level + 1) - 1 + (prefix | (1 << level))
    false_child = 2 ** (level + 1) - 1 + prefix
    negated = sign[:, level] < 0  # (trees, internal)
    split = np.where(negated, -bound[:, level].astype(np.float64), bound[:, level].astype(np.float64))
    leaf = np.arange(internal, internal + patterns)
    real = slot_feature < n_features  # (trees, width): padding slots add nothing
    per_tree = real.sum(axis=1)
    targets_tree = np.repeat(np.arange(n_trees), per_tree * patterns)
    targets_node = np.concatenate([np.repeat(leaf, k) for k in per_tree])
    targets_id = np.concatenate([np.tile(slot_feature[t][real[t]], patterns) for t in range(n_trees)])
    weights = np.concatenate([table[t * patterns : (t + 1) * patterns][:, real[t]].ravel() for t in range(n_trees)])
    nodes = internal + patterns
    modes = np.where(negated, "BRANCH_GTE", "BRANCH_LEQ")
    return {
        "nodes_treeids": np.repeat(np.arange(n_trees), nodes).tolist(),
        "nodes_nodeids": np.tile(np.arange(nodes), n_trees).tolist(),
        "nodes_featureids": np.column_stack([feature[:, level], np.zeros((n_trees, patterns), np.int64)])
        .ravel()
        .tolist(),
        "nodes_modes": np.column_stack([modes, np.full((n_trees, patterns), "LEAF")]).ravel().tolist(),
        "nodes_truenodeids": np.tile(np.concatenate([true_child, np.zeros(patterns, np.int64)]), n_trees).tolist(),
        "nodes_falsenodeids": np.tile(np.concatenate([false_child, np.zeros(patterns, np.int64)]), n_trees).tolist(),
        "nodes_missing_value_tracks_true": [0] * (n_trees * nodes),  # NaN fails the test: bit 0
        "nodes_values_as_tensor": numpy_helper.from_array(
            np.column_stack([split, np.zeros((n_trees, patterns))]).ravel(), "treeshap_splits"
        ),
        "target_treeids": targets_tree.tolist(),
        "target_nodeids": targets_node.tolist(),
        "target_ids": targets_id.tolist(),
        "target_weights_as_tensor": numpy_helper.from_array(weights.astype(np.float64), "treeshap_weights"),
    }


def remove_attributions(model: onnx.ModelProto) -> None:
    """The graph as exported before it computed TreeSHAP: the attribution outputs and the nodes
    only they need are dropped (ORT runs every node whatever is fetched)."""
    kept = [o for o in model.graph.output if o.name not in ATTRIBUTION_OUTPUTS]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    needed = {o.name for o in kept}
    nodes = []
    for node in reversed(model.graph.node):  # topologically sorted: consumers come after producers
        if needed & set(node.output):
            nodes.append(node)
            needed |= set(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    initializers = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    inputs = [i for i in model.graph.input if i.name in needed]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
