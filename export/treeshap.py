"""TreeSHAP tables of a LightGBM model, for the serve-time explainer (contract/explain.py).

Path-dependent TreeSHAP (what LightGBM's `pred_contrib` computes) gives each feature the
Shapley value of v(S) = the tree's expected output when the features in S follow the row and
the others split by training cover. Within one tree, v(S) depends on the row only through the
outcome of each split test, so for every outcome pattern (2^internal nodes) and every subset
of the tree's features we compute v exactly and take Shapley's weighted sum: a small float64
table per tree, looked up at serve time.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np
from lightgbm import LGBMClassifier

from contract.explain import EXPLAINER_FORMAT, MISSING_NAN, MISSING_NONE, MISSING_ZERO, pack_arrays
from contract.features import Engineering

_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}


class UnsupportedTree(ValueError):
    """A split the serve-time explainer does not evaluate (categorical splits)."""


@dataclass
class TreeTable:
    node_feature: np.ndarray  # (m,) model-feature index of each internal node (preorder)
    node_threshold: np.ndarray  # (m,) float64, LightGBM's own threshold
    node_default_left: np.ndarray  # (m,) bool
    node_missing: np.ndarray  # (m,) MISSING_* codes
    features: np.ndarray  # (K,) the distinct features the tree splits on
    table: np.ndarray  # (2^m, K) SHAP value of each feature for each outcome pattern (bit j: node j went left)
    expected_value: float  # v(empty set): the tree's share of the base value


def tree_table(structure: dict[str, Any]) -> TreeTable:
    """The table of one tree from LightGBM's `dump_model()` tree_structure."""
    nodes: list[dict[str, Any]] = []
    leaves: list[tuple[float, list[tuple[int, bool, float]]]] = []  # value, [(node, went_left, cover share)]

    def walk(node: dict[str, Any], path: list[tuple[int, bool, float]]) -> None:
        if "split_feature" not in node:
            leaves.append((float(node["leaf_value"]), path))
            return
        if node.get("decision_type", "<=") != "<=":
            raise UnsupportedTree(f"split decision {node['decision_type']!r}: only numerical '<=' splits are explained")
        index = len(nodes)
        nodes.append(node)
        count = float(node["internal_count"])
        for child, went_left in ((node["left_child"], True), (node["right_child"], False)):
            child_count = float(child["internal_count"] if "split_feature" in child else child["leaf_count"])
            walk(child, [*path, (index, went_left, child_count / count)])

    walk(structure, [])
    m = len(nodes)
    node_feature = np.array([int(n["split_feature"]) for n in nodes], dtype=np.int64)
    features = np.unique(node_feature)
    k = len(features)
    slot = {int(f): i for i, f in enumerate(features)}
    patterns = np.arange(2**m)
    went_left = ((patterns[:, None] >> np.arange(m)) & 1).astype(bool)  # (P, m)
    subsets = np.arange(2**k)
    in_subset = ((subsets[:, None] >> np.arange(k)) & 1).astype(bool)  # (S, K)

    # v[p, s]: expected output with the features of subset s following pattern p.
    v = np.zeros((len(patterns), len(subsets)))
    for value, path in leaves:
        weight = np.ones((len(patterns), len(subsets)))
        for node, left, share in path:
            follows = in_subset[:, slot[int(node_feature[node])]][None, :]  # (1, S)
            matches = (went_left[:, node] == left)[:, None]  # (P, 1)
            weight *= np.where(follows, matches.astype(float), share)
        v += value * weight

    table = np.zeros((len(patterns), k))
    for i in range(k):
        without = subsets[~in_subset[:, i]]
        sizes = in_subset[without].sum(axis=1)
        shapley = np.array([factorial(s) * factorial(k - s - 1) / factorial(k) for s in sizes])
        table[:, i] = (v[:, without | (1 << i)] - v[:, without]) @ shapley
    return TreeTable(
        node_feature=node_feature,
        node_threshold=np.array([float(n["threshold"]) for n in nodes], dtype=np.float64),
        node_default_left=np.array([bool(n.get("default_left", True)) for n in nodes]),
        node_missing=np.array([_MISSING[str(n.get("missing_type", "None"))] for n in nodes], dtype=np.int8),
        features=features,
        table=table,
        expected_value=float(v[0, 0]) if m else float(structure["leaf_value"]),
    )


def tree_tables(model: LGBMClassifier) -> list[TreeTable]:
    """Every tree the model predicts with (early stopping's best iteration)."""
    dump = model.booster_.dump_model(num_iteration=model.best_iteration_ or None)
    if dump.get("num_class", 1) != 1:
        raise UnsupportedTree("only a binary model (one tree per iteration) is explained")
    return [tree_table(tree["tree_structure"]) for tree in dump["tree_info"]]


def explainer_payload(model: LGBMClassifier, engineering: Engineering, typical: np.ndarray) -> dict[str, Any]:
    """The `explainer` metadata value: padded per-tree arrays (base64 npz) and what names them.

    `typical` holds one value per model feature (the median applicant), against which a
    reason says "high" or "low".
    """
    tables = tree_tables(model)
    n_features = len(engineering.feature_names)
    if model.n_features_in_ != n_features:
        raise ValueError(f"the model reads {model.n_features_in_} features, the engineering makes {n_features}")
    depth = max(1, max(len(t.node_feature) for t in tables))
    width = max(1, max(len(t.features) for t in tables))
    n_trees = len(tables)
    node_feature = np.zeros((n_trees, depth), dtype=np.int32)
    node_threshold = np.zeros((n_trees, depth), dtype=np.float64)
    node_default_left = np.zeros((n_trees, depth), dtype=bool)
    node_missing = np.zeros((n_trees, depth), dtype=np.int8)
    node_bit = np.zeros((n_trees, depth), dtype=np.int64)
    table = np.zeros((n_trees, 2**depth, width), dtype=np.float64)
    table_feature = np.full((n_trees, width), n_features, dtype=np.int32)  # padding -> a discarded column
    for t, tree in enumerate(tables):
        m, k = len(tree.node_feature), len(tree.features)
        node_feature[t, :m] = tree.node_feature
        node_threshold[t, :m] = tree.node_threshold
        node_default_left[t, :m] = tree.node_default_left
        node_missing[t, :m] = tree.node_missing
        node_bit[t, :m] = 1 << np.arange(m)
        table[t, : 2**m, :k] = tree.table
        table_feature[t, :k] = tree.features
    arrays: dict[str, np.ndarray] = {
        "node_feature": node_feature,
        "node_threshold": node_threshold,
        "node_default_left": node_default_left,
        "node_missing": node_missing,
        "node_bit": node_bit,
        "table": table,
        "table_feature": table_feature,
    }
    return {
        "format": EXPLAINER_FORMAT,
        "method": "path-dependent TreeSHAP, tabulated per tree over split-outcome patterns (export/treeshap.py)",
        "engineering": engineering.to_dict(),
        "feature_names": engineering.feature_names,
        "base_value": float(sum(t.expected_value for t in tables)),
        "typical": [float(x) for x in typical],
        "n_trees": n_trees,
        "arrays": pack_arrays(arrays),
    }
