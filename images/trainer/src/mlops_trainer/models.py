"""Data sets (shipped with scikit-learn, nothing downloaded) and model types."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .errors import UsageError

DATASETS = ("iris", "wine", "breast_cancer")

# model type -> (factory, default parameters). Every type is a scikit-learn Pipeline, so a
# served model takes the raw feature columns.
MODEL_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "logistic_regression": ("sklearn.linear_model:LogisticRegression", {"max_iter": 500}),
    "random_forest": ("sklearn.ensemble:RandomForestClassifier", {"n_estimators": 50}),
    "gradient_boosting": ("sklearn.ensemble:GradientBoostingClassifier", {}),
    "knn": ("sklearn.neighbors:KNeighborsClassifier", {}),
    # A baseline that always predicts the most frequent class: useful to check that a worse
    # model never takes the `champion` alias.
    "dummy": ("sklearn.dummy:DummyClassifier", {"strategy": "most_frequent"}),
}
# Models are stored in the skops format (no pickle: loading cannot run arbitrary code).
# skops refuses types outside its default allow-list; these are scikit-learn's own
# internals of the model types above, reviewed and allowed explicitly.
SKOPS_TRUSTED_TYPES: dict[str, list[str]] = {
    "random_forest": ["sklearn.tree._tree.Tree"],
    "gradient_boosting": ["sklearn.tree._tree.Tree"],
    "knn": ["sklearn.metrics._dist_metrics.EuclideanDistance64", "sklearn.neighbors._kd_tree.KDTree"],
}
SEEDED = {"random_forest", "gradient_boosting", "dummy", "logistic_regression"}


def column_name(feature: str) -> str:
    """'sepal length (cm)' -> 'sepal_length_cm': names that are easy to send as JSON."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", feature).strip("_").lower()


def load_dataset(name: str):
    """(features DataFrame, target Series, target names) of a bundled scikit-learn data set."""
    from sklearn import datasets

    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.rename(columns={c: column_name(c) for c in bunch.feature_names})
    features = [column_name(c) for c in bunch.feature_names]
    return frame[features], frame["target"].astype("int64"), [str(t) for t in bunch.target_names]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are JSON when they parse (numbers, true, null), else strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise UsageError(
                f"--param {pair!r}: expected name=value with a lower-case name, e.g. max_iter=200"
            )
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def build_model(model_type: str, params: dict[str, Any], seed: int):
    """A scikit-learn Pipeline (scaler + estimator); unknown types and parameters are errors."""
    import importlib

    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if model_type not in MODEL_TYPES:
        raise UsageError(f"unknown model type {model_type!r}; allowed: {', '.join(sorted(MODEL_TYPES))}")
    target, defaults = MODEL_TYPES[model_type]
    module, _, cls_name = target.partition(":")
    cls: Callable[..., Any] = getattr(importlib.import_module(module), cls_name)
    allowed = set(cls().get_params())
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise UsageError(
            f"model type {model_type!r} has no parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    merged = {**defaults, **params}
    if model_type in SEEDED and "random_state" in allowed:
        merged.setdefault("random_state", seed)
    try:
        estimator = cls(**merged)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid parameters for {model_type}: {exc}") from exc
    return Pipeline([("scale", StandardScaler()), ("model", estimator)]), merged
