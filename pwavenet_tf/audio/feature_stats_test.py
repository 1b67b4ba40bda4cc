import json

import numpy as np
import pytest

from pwavenet_tf.audio.feature_stats import (
    STD_FLOOR,
    compute_feature_stats,
    load_feature_stats,
    save_feature_stats,
)


def _arrays():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(3.0, 2.0, (n, 4)).astype(np.float32) for n in (10, 1, 0, 57)]
    arrays[1][:, 3] = 7.0
    for a in arrays:
        if len(a):
            a[:, 3] = 7.0  # constant dim: std floored
    return arrays


def test_matches_numpy_on_concatenation():
    arrays = _arrays()
    stats = compute_feature_stats(iter(arrays))  # works on a one-shot iterator
    cat = np.concatenate(arrays).astype(np.float64)
    assert stats["count"] == 68
    assert isinstance(stats["mean"][0], float) and len(stats["std"]) == 4
    np.testing.assert_allclose(stats["mean"], cat.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats["std"][:3], cat.std(0)[:3], rtol=1e-10)
    assert stats["mean"][3] == pytest.approx(7.0)
    assert stats["std"][3] == STD_FLOOR


def test_large_offset_is_stable():
    rng = np.random.default_rng(1)
    arrays = [1e4 + rng.normal(0, 1e-2, (1000, 2)) for _ in range(5)]
    stats = compute_feature_stats(arrays)
    np.testing.assert_allclose(stats["std"], np.concatenate(arrays).std(0), rtol=1e-8)


def test_compute_errors():
    with pytest.raises(ValueError, match="0 frames"):
        compute_feature_stats([])
    with pytest.raises(ValueError, match=r"\[frames, dim\].*shape=\(3,\)"):
        compute_feature_stats([np.zeros(3)])
    with pytest.raises(ValueError, match=r"same dim 2.*shape=\(1, 3\)"):
        compute_feature_stats([np.zeros((2, 2)), np.zeros((1, 3))])
    with pytest.raises(ValueError, match="NaN or Inf"):
        compute_feature_stats([np.array([[np.nan, 0.0]])])


def test_save_load_round_trip(tmp_path):
    stats = compute_feature_stats(_arrays())
    path = save_feature_stats(stats, tmp_path / "a" / "stats.json")
    assert load_feature_stats(path) == stats
    assert load_feature_stats(path, expected_dim=4) == stats
    with pytest.raises(ValueError, match="4 but 80 was expected"):
        load_feature_stats(path, expected_dim=80)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="not found.*missing.json"):
        load_feature_stats(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON.*bad.json"):
        load_feature_stats(bad)
    bad.write_text(json.dumps({"mean": [0.0, 1.0], "std": [1.0], "count": 3}))
    with pytest.raises(ValueError, match=r"len\(mean\)=2, len\(std\)=1"):
        load_feature_stats(bad)
    bad.write_text(json.dumps({"mean": [0.0]}))
    with pytest.raises(ValueError, match=r"missing keys \['std', 'count'\]"):
        load_feature_stats(bad)
    bad.write_text(json.dumps({"mean": [0.0], "std": [0.0], "count": 3}))
    with pytest.raises(ValueError, match="std > 0"):
        load_feature_stats(bad)
