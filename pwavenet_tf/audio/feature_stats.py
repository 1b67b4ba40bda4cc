"""Per-dimension mean/std of frame-level features over a dataset, saved as JSON.

Stats are a dict `{"mean": list[float], "std": list[float], "count": int}`: population
mean and standard deviation of each feature dimension over all frames of all arrays
(std floored at `STD_FLOOR`), and the number of frames.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Iterable

import numpy as np

from pwavenet_tf.atomic_files import write_json

STD_FLOOR = 1e-5

__all__ = ["STD_FLOOR", "compute_feature_stats", "load_feature_stats", "save_feature_stats"]


def compute_feature_stats(feature_arrays: Iterable[Any]) -> dict:
    """Streams `[frames, dim]` arrays and returns `{"mean", "std", "count"}`.

    Uses float64 with Chan et al.'s pairwise update, so large corpora are accurate.

    Raises:
        ValueError: an array is not 2-D, dims differ, values are not finite, or there
            are no frames at all.
    """
    count = 0
    mean = None
    m2 = None
    dim = None
    for i, arr in enumerate(feature_arrays):
        a = np.asarray(arr, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(
                f"Feature arrays must have shape [frames, dim]. Received: array {i} with shape={a.shape}"
            )
        if dim is None:
            dim = a.shape[1]
            mean = np.zeros(dim)
            m2 = np.zeros(dim)
        elif a.shape[1] != dim:
            raise ValueError(
                f"All feature arrays must have the same dim {dim}. "
                f"Received: array {i} with shape={a.shape}"
            )
        n = a.shape[0]
        if n == 0:
            continue
        if not np.all(np.isfinite(a)):
            raise ValueError(f"Feature array {i} contains NaN or Inf. Received: shape={a.shape}")
        a_mean = a.mean(axis=0)
        a_m2 = ((a - a_mean) ** 2).sum(axis=0)
        total = count + n
        delta = a_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + a_m2 + delta**2 * (count * n / total)
        count = total
    if count == 0:
        raise ValueError(f"No feature frames to compute stats from. Received: {count} frames")
    std = np.maximum(np.sqrt(m2 / count), STD_FLOOR)
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std], "count": int(count)}


def _validate(stats: Any, source: str, expected_dim: int | None = None) -> dict:
    if not isinstance(stats, dict):
        raise ValueError(f"Feature stats must be a JSON object. Received: {type(stats).__name__} in {source}")
    missing = [k for k in ("mean", "std", "count") if k not in stats]
    if missing:
        raise ValueError(f"Feature stats are missing keys {missing}. Received: keys={sorted(stats)} in {source}")
    mean, std, count = stats["mean"], stats["std"], stats["count"]
    if not isinstance(mean, (list, tuple)) or not isinstance(std, (list, tuple)):
        raise ValueError(f"Feature stats 'mean' and 'std' must be lists. Received: in {source}")
    if len(mean) != len(std) or len(mean) == 0:
        raise ValueError(
            f"Feature stats 'mean' and 'std' must have the same non-zero length. "
            f"Received: len(mean)={len(mean)}, len(std)={len(std)} in {source}"
        )
    if expected_dim is not None and len(mean) != expected_dim:
        raise ValueError(
            f"Feature stats have dim {len(mean)} but {expected_dim} was expected. "
            f"Received: len(mean)={len(mean)} in {source}"
        )
    try:
        mean_f = [float(v) for v in mean]
        std_f = [float(v) for v in std]
    except (TypeError, ValueError) as e:
        raise ValueError(f"Feature stats values must be numbers. Received: {e} in {source}") from e
    if not all(math.isfinite(v) for v in mean_f) or not all(math.isfinite(v) and v > 0 for v in std_f):
        raise ValueError(f"Feature stats must be finite with std > 0. Received: in {source}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"Feature stats 'count' must be a positive integer. Received: count={count!r} in {source}")
    return {"mean": mean_f, "std": std_f, "count": count}


def save_feature_stats(stats: dict, path: str | os.PathLike) -> str:
    """Validates and writes stats as JSON (parent directories are created). Returns the path."""
    path = os.fspath(path)
    stats = _validate(stats, "stats")
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    write_json(path, stats, indent=1)  # atomic: a worker copying the folder sees it whole
    return path


def load_feature_stats(path: str | os.PathLike, expected_dim: int | None = None) -> dict:
    """Reads stats written by `save_feature_stats`; checks keys, lengths and `expected_dim`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Feature stats file not found. Received: path={path!r}")
    try:
        with open(path) as f:
            stats = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"Feature stats file is not valid JSON ({e}). Received: path={path!r}") from e
    return _validate(stats, f"path={path!r}", expected_dim)
