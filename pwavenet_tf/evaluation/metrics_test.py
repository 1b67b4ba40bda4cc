import numpy as np
import pytest

from pwavenet_tf.audio.log_mel_spectrogram import LogMelSpectrogram
from pwavenet_tf.evaluation import metrics as M

SR = 16000


@pytest.fixture(scope="module")
def layer():
    return LogMelSpectrogram(sample_rate=SR, n_fft=512, hop_length=128, n_mels=40, fmax=8000.0)


def _speechlike(seconds=0.5, seed=0):
    """Harmonics of a gliding pitch with a syllable envelope, loud enough to sit far above
    the log floor."""
    t = np.arange(int(seconds * SR) // 128 * 128) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.3 + 0.7 * np.sin(np.pi * t / t[-1]) ** 2
    rng = np.random.default_rng(seed)
    return (0.1 * env * x + 1e-3 * rng.normal(size=t.shape)).astype("float32")


def test_identical_signals_give_zero(layer):
    x = _speechlike()
    assert M.log_mel_l1(x, x, layer) == 0.0
    assert M.mel_cepstral_distortion(x, x, layer) == 0.0
    assert M.compare(x, x, layer) == {"log_mel_l1": 0.0, "mcd_db": 0.0}


def test_metrics_grow_with_noise(layer):
    x = _speechlike()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=x.shape).astype("float32")
    l1, mcd = [], []
    for level in (0.001, 0.01, 0.1):
        y = np.clip(x + level * noise, -1, 1)
        m = M.compare(x, y, layer)
        l1.append(m["log_mel_l1"])
        mcd.append(m["mcd_db"])
    assert 0 < l1[0] < l1[1] < l1[2]
    assert 0 < mcd[0] < mcd[1] < mcd[2]
    # Symmetric.
    y = x + 0.01 * noise
    assert M.log_mel_l1(x, y, layer) == pytest.approx(M.log_mel_l1(y, x, layer))


def test_mcd_excludes_c0_a_gain_change_is_free(layer):
    x = _speechlike()
    # A gain of 2 shifts every log-mel value by ln 2 (above the floor): only c0 changes.
    assert M.log_mel_l1(x, 2 * x, layer) == pytest.approx(np.log(2.0), rel=1e-3)
    assert M.mel_cepstral_distortion(x, 2 * x, layer) < 0.01


def test_cepstrum_is_the_cosine_expansion():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 16))
    c = M.mel_cepstrum(x, 16)
    n = np.arange(16) + 0.5
    rebuilt = c[:, :1] + 2 * sum(c[:, d:d + 1] * np.cos(np.pi * d * n / 16) for d in range(1, 16))
    np.testing.assert_allclose(rebuilt, x, atol=1e-10)
    # Hand value of the formula: one coefficient differing by 0.1 ->
    # (10 / ln 10) * sqrt(2 * 0.01).
    basis = np.cos(np.pi * 3 * n / 16)[None]
    assert M.mcd_from_log_mel(2 * 0.1 * basis, 0 * basis) == pytest.approx(
        10 / np.log(10) * np.sqrt(2 * 0.01))


def test_errors(layer):
    x = _speechlike()
    with pytest.raises(ValueError, match="same length"):
        M.log_mel_l1(x, x[:-128], layer)
    with pytest.raises(ValueError, match="NaN"):
        M.compare(x, np.full_like(x, np.nan), layer)
    with pytest.raises(ValueError, match="mono"):
        M.log_mel_l1(np.stack([x, x, x]), x, layer)
    with pytest.raises(ValueError, match="momentum"):
        M.griffin_lim(np.ones((4, 257), "float32"), layer, momentum=1.0)
    mel = np.zeros((3, 80), "float32")
    with pytest.raises(ValueError, match=r"--mcd-coefficients\) must be a positive integer. "
                                         r"Received: num_coefficients=0"):
        M.mcd_from_log_mel(mel, mel, 0)
    with pytest.raises(ValueError, match="at least 2 mel bands"):
        M.mcd_from_log_mel(mel[:, :1], mel[:, :1], 24)


def test_mel_pseudo_inverse_is_nonnegative(layer):
    x = _speechlike()
    mag = M.mel_to_linear_magnitude(M.log_mel(x, layer), layer)
    assert mag.shape == (len(x) // 128, 257)
    assert np.all(mag >= 0)
    # Mapping back through the filterbank gives (nearly) the mel magnitudes again.
    mel_again = np.log(np.maximum(mag @ layer.mel_weight_matrix, layer.log_floor))
    assert np.mean(np.abs(mel_again - M.log_mel(x, layer))) < 0.2


def test_griffin_lim_reference_runs_and_converges(layer):
    x = _speechlike()
    lm = M.log_mel(x, layer)
    rough = M.griffin_lim_from_mel(lm, layer, num_iters=0)
    refined = M.griffin_lim_from_mel(lm, layer, num_iters=16)
    assert refined.shape == x.shape and np.all(np.isfinite(refined))
    # Phase retrieval brings the magnitudes (and hence the mel) closer to the target.
    assert M.log_mel_l1(x, refined, layer) < M.log_mel_l1(x, rough, layer)
    assert M.log_mel_l1(x, refined, layer) < 0.5
    # Deterministic for a seed.
    np.testing.assert_array_equal(refined, M.griffin_lim_from_mel(lm, layer, num_iters=16))
    # Exact magnitudes: spectral convergence falls with the iterations.
    import tensorflow as tf

    framing = M._Framing(layer, len(x))
    mag = tf.abs(framing.stft(tf.constant(x))).numpy()
    sc = [M.spectral_convergence(x, M.griffin_lim(mag, layer, num_iters=n), layer)
          for n in (0, 24)]
    assert sc[1] < 0.6 * sc[0]
