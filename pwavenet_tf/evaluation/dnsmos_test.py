import importlib.util

import numpy as np
import pytest

from pwavenet_tf.evaluation import dnsmos as D


def test_unavailable_without_the_packages(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "speechmos" else real(name, *a))
    if real("onnxruntime") is None:
        assert "onnxruntime" in D.unavailable_reason()
    else:
        assert "speechmos" in D.unavailable_reason()
    assert D.DNSMOS.create() is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert "onnxruntime" in D.unavailable_reason()


def test_slaney_filterbank():
    fb = D.slaney_mel_filterbank(16000, 321, 120)
    assert fb.shape == (120, 161)
    assert np.all(fb >= 0) and np.all(fb.max(axis=1) > 0)
    # Slaney normalisation: every triangle has unit area in Hz (where triangles are wider
    # than the 50 Hz bins; the narrow low bands fall between bins).
    area = fb.sum(axis=1) * (16000 / 321)
    np.testing.assert_allclose(area[60:], 1.0, rtol=0.1)
    # The peaks rise with the band index.
    assert np.all(np.diff(np.argmax(fb, axis=1)) >= 0)


def test_p808_features_shape_and_range():
    rng = np.random.default_rng(0)
    x = 0.1 * rng.normal(size=144000).astype("float32")
    f = D.p808_features(x)
    assert f.shape == (900, 120)
    # (dB - max + ...) within an 80 dB range: (dB + 40) / 40 spans at most 2.
    assert f.max() - f.min() <= 2.0 + 1e-5


def test_matches_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    fb = librosa.filters.mel(sr=16000, n_fft=321, n_mels=120)
    np.testing.assert_allclose(D.slaney_mel_filterbank(16000, 321, 120), fb, atol=1e-6)
    rng = np.random.default_rng(0)
    x = 0.1 * rng.normal(size=16000).astype("float32")
    mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=321, hop_length=160, n_mels=120)
    ref = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T
    np.testing.assert_allclose(D.p808_features(x), ref, atol=1e-4)


def test_scores_when_installed():
    if D.unavailable_reason() is not None:
        pytest.skip(D.unavailable_reason())
    rng = np.random.default_rng(0)
    t = np.arange(22050 * 2) / 22050
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.shape)
    scores = D.DNSMOS.create().score(tone.astype("float32"), 22050)
    assert set(scores) == {"p808_mos", "p835_sig", "p835_bak", "p835_ovrl"}
    assert all(0.5 < v < 5.5 for v in scores.values())
