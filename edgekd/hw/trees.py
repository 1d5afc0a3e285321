"""Gradient-boosted regression trees as plain JSON (no pickle), with a numpy predictor."""

from __future__ import annotations

import numpy as np

FORMAT = "edgekd.gbrt/1"


def fit_gbrt(x: np.ndarray, y: np.ndarray, *, n_estimators: int = 300, max_depth: int = 3,
             learning_rate: float = 0.05, seed: int = 0):
    """Fit scikit-learn's GradientBoostingRegressor (squared error) on ``x`` → ``y``."""
    # heavy optional package: imported on first use
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate,
                                      subsample=0.8, random_state=seed)
    return model.fit(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))


def to_json(model, feature_names) -> dict:
    """Serialize a fitted GradientBoostingRegressor: init constant, learning rate, and each tree's arrays."""
    trees = []
    for est in model.estimators_[:, 0]:
        t = est.tree_
        trees.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "feature": t.feature.tolist(), "threshold": [float(v) for v in t.threshold],
                      "value": [float(f"{v:.7g}") for v in t.value[:, 0, 0]]})
    init = float(np.ravel(model.init_.constant_)[0])
    return {"format": FORMAT, "features": list(feature_names), "init": init,
            "learning_rate": float(model.learning_rate), "trees": trees}


def predict(blob: dict, x: np.ndarray) -> np.ndarray:
    """Predict with a tree ensemble serialized by :func:`to_json` (matches scikit-learn's predict)."""
    # scikit-learn's trees compare float32 features against their thresholds
    x = np.atleast_2d(np.asarray(x, dtype=np.float32)).astype(np.float64)
    if x.shape[1] != len(blob["features"]):
        raise ValueError(f"expected {len(blob['features'])} features, got {x.shape[1]}")
    out = np.full(len(x), blob["init"])
    rows = np.arange(len(x))
    for tree in blob["trees"]:
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
        node = np.zeros(len(x), dtype=np.int64)
        while True:
            inner = left[node] != -1
            if not inner.any():
                break
            go_left = x[rows, np.where(inner, feature[node], 0)] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        out += blob["learning_rate"] * np.asarray(tree["value"])[node]
    return out
