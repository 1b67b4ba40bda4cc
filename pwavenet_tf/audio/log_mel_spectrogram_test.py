import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio.log_mel_spectrogram import LogMelSpectrogram, reflect_indices
from pwavenet_tf.testing.test_case import run_layer_test

SMALL = dict(sample_rate=16000, n_fft=256, hop_length=64, n_mels=20)


def numpy_log_mel(audio: np.ndarray, layer: LogMelSpectrogram) -> np.ndarray:
    """Straightforward reference: centred frames, window, |rfft|^p, mel, log."""
    n_fft, hop = layer.n_fft, layer.hop_length
    audio = np.asarray(audio, np.float64)
    pad = n_fft // 2
    padded = np.pad(audio, pad, mode="reflect") if len(audio) > pad else audio[
        reflect_indices(np.arange(-pad, len(audio) + pad), len(audio))
    ]
    window = layer.window_array.astype(np.float64)
    frames = np.stack(
        [padded[i * hop : i * hop + n_fft] * window for i in range(len(audio) // hop)]
    ).reshape(-1, n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=-1)) ** layer.power
    mel = mag @ layer.mel_weight_matrix.astype(np.float64)
    return np.log(np.maximum(mel, layer.log_floor))


def test_run_layer_test():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 1024)).astype(np.float32)
    out = run_layer_test(
        LogMelSpectrogram,
        init_kwargs=SMALL,
        input_data=audio,
        expected_output_shape=(2, 16, 20),
        expected_num_trainable_weights=0,
        atol=1e-5,
    )
    assert out.dtype == "float32"


def test_config_round_trip_and_defaults():
    layer = LogMelSpectrogram(22050, win_length=800, window="hamming", fmin=50.0, fmax=8000.0)
    config = layer.get_config()
    assert config["n_fft"] == 1024 and config["hop_length"] == 256 and config["n_mels"] == 80
    assert config["win_length"] == 800 and config["window"] == "hamming"
    assert config["fmin"] == 50.0 and config["fmax"] == 8000.0 and config["log_floor"] == 1e-5
    revived = LogMelSpectrogram.from_config(config)
    assert revived.get_config() == config
    assert layer.mel_weight_matrix.shape == (513, 80)
    assert LogMelSpectrogram(22050).effective_fmax == 11025.0


@pytest.mark.parametrize("samples", [0, 64, 640, 1000, 4096])
def test_alignment_frames_times_hop(samples):
    layer = LogMelSpectrogram(**SMALL)
    out = layer(np.zeros((3, samples), np.float32))
    assert tuple(out.shape) == (3, samples // 64, 20)
    if samples % 64 == 0:
        assert out.shape[1] * 64 == samples


def test_matches_numpy_reference():
    rng = np.random.default_rng(1)
    audio = (0.3 * rng.standard_normal((2, 1600))).astype(np.float32)
    for kwargs in [SMALL, dict(SMALL, win_length=200, window="hamming", power=2.0, fmin=100.0)]:
        layer = LogMelSpectrogram(**kwargs)
        got = layer(audio).numpy()
        for b in range(2):
            np.testing.assert_allclose(got[b], numpy_log_mel(audio[b], layer), atol=1e-4, rtol=1e-4)


def test_frame_is_centred_on_sample():
    # An impulse at sample i*hop affects frame i the most (frames are centred).
    layer = LogMelSpectrogram(**SMALL)
    audio = np.zeros((1, 1280), np.float32)
    audio[0, 10 * 64] = 1.0
    energy = layer(audio).numpy()[0].max(axis=-1)
    assert np.argmax(energy) == 10


def test_sine_peak_at_1khz():
    sr = 22050
    t = np.arange(sr // 2) / sr
    audio = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)[None, : 256 * 40]
    layer = LogMelSpectrogram(sr)
    out = layer(audio).numpy()[0]
    assert out.shape == (40, 80)
    peak = np.argmax(out[5:-5].mean(axis=0))
    centres = layer.mel_center_frequencies
    assert abs(centres[peak] - 1000.0) < (centres[peak + 1] - centres[peak - 1]) / 2
    assert np.argmin(np.abs(centres - 1000.0)) == peak


def test_short_inputs_do_not_crash():
    layer = LogMelSpectrogram(**SMALL)  # pad = 128
    for samples in [1, 5, 64, 100, 128, 129]:
        audio = np.random.default_rng(samples).uniform(-1, 1, (2, samples)).astype(np.float32)
        out = layer(audio).numpy()
        assert out.shape == (2, samples // 64, 20)
        assert np.all(np.isfinite(out))
        if samples >= 64:
            np.testing.assert_allclose(out[0], numpy_log_mel(audio[0], layer), atol=1e-4, rtol=1e-4)


def test_silence_gives_log_floor():
    layer = LogMelSpectrogram(**SMALL, log_floor=1e-3)
    out = layer(np.zeros((1, 256), np.float32)).numpy()
    np.testing.assert_allclose(out, np.log(1e-3), rtol=1e-6)
    assert layer.pad_value == pytest.approx(np.log(1e-3))


def test_dynamic_shapes_in_tf_function_and_saved_model(tmp_path):
    layer = LogMelSpectrogram(**SMALL)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def f(audio):
        return layer(audio)

    for shape in [(1, 640), (3, 100), (2, 0), (1, 3)]:
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        np.testing.assert_allclose(f(x).numpy(), layer(x).numpy(), atol=1e-5)
    module = tf.Module()
    module.f = f
    tf.saved_model.save(module, str(tmp_path / "sm"))
    restored = tf.saved_model.load(str(tmp_path / "sm"))
    x = np.random.default_rng(2).uniform(-1, 1, (2, 500)).astype(np.float32)
    np.testing.assert_allclose(restored.f(x).numpy(), layer(x).numpy(), atol=1e-5)
    # Functional model with unknown length.
    inp = keras.Input(shape=(None,))
    out = LogMelSpectrogram(**SMALL)(inp)
    assert tuple(out.shape) == (None, None, 20)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(win_length=300), "win_length=300, n_fft=256"),
        (dict(fmax=9000.0), "fmax=9000.0"),
        (dict(fmin=5000.0, fmax=4000.0), "fmin=5000.0, fmax=4000.0"),
        (dict(fmin=8000.0), "fmin=8000.0"),
        (dict(hop_length=0), "hop_length=0"),
        (dict(n_fft=-4), "n_fft=-4"),
        (dict(window="blackman"), "window='blackman'"),
        (dict(log_floor=0.0), "log_floor=0.0"),
        (dict(n_mels=0), "n_mels=0"),
        (dict(power=0.0), "power=0.0"),
    ],
)
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match="Received: " + match.replace("(", r"\(")):
        LogMelSpectrogram(**dict(SMALL, **kwargs))


def test_rank_error():
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        LogMelSpectrogram(**SMALL)(np.zeros((2, 3, 4), np.float32))
