"""ExportModule: signatures equal the in-memory generators, validation, metadata, threads."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio.front_end import make_log_mel
from pwavenet_tf.audio.quantize import float_to_pcm16
from pwavenet_tf.config import load_config
from pwavenet_tf.export.export_module import ExportModule
from pwavenet_tf.models.iaf_student import IAFStudent
from pwavenet_tf.models.student_generator import StudentGenerator
from pwavenet_tf.models.teacher_generator import TeacherGenerator
from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher

MAX_SECONDS = 0.5  # 43 frames of 256 samples at 22,050 Hz: cheap "too long" inputs
MAX_FRAMES = int(MAX_SECONDS * 22050 // 256)


def feature_stats(dim, seed=0):
    r = np.random.default_rng(seed)
    return {"mean": r.normal(-5.0, 1.0, dim).tolist(), "std": r.uniform(1.0, 2.0, dim).tolist(),
            "count": 100}


def tiny_student(config, seed=0):
    """The config's student with random weights whose output depends on its conditioning."""
    keras.utils.set_random_seed(seed)
    stats = feature_stats(config.audio.conditioning_dim, seed)
    student = IAFStudent.from_pwavenet_config(config, stats["mean"], stats["std"])
    r = np.random.default_rng(seed)
    for flow in student.flows:  # the output kernels start at zero: make them matter
        flow.output_proj.kernel.assign(r.normal(0, 0.2, size=flow.output_proj.kernel.shape))
    return student


def tiny_teacher(config, seed=0):
    keras.utils.set_random_seed(seed)
    stats = feature_stats(config.audio.conditioning_dim, seed)
    return WaveNetTeacher.from_pwavenet_config(config, stats["mean"], stats["std"])


def log_mel_like(batch, frames, dim=80, seed=0):
    return np.random.default_rng(seed).normal(-5.0, 2.0, (batch, frames, dim)).astype("float32")


@pytest.fixture(scope="module")
def config():
    return load_config("tiny")


@pytest.fixture(scope="module")
def exported(config, tmp_path_factory):
    """A tiny student exported (max 0.5 s) and loaded back, with its in-memory generator."""
    student = tiny_student(config)
    path = str(tmp_path_factory.mktemp("export") / "1")
    ExportModule(student, config, max_seconds=MAX_SECONDS).save(path)
    return student, StudentGenerator(student), tf.saved_model.load(path), path


def _np(x):
    return np.asarray(x)


def test_serving_default_equals_the_in_memory_student(exported):
    student, gen, loaded, _ = exported
    mel = log_mel_like(2, 7)
    outputs = {}
    for seed in (0, 5):
        out = loaded.signatures["serving_default"](mel=tf.constant(mel),
                                                   seed=tf.constant(seed, tf.int64))
        audio, pcm = _np(out["audio"]), _np(out["audio_pcm16"])
        assert audio.shape == (2, 7 * 256) and audio.dtype == np.float32
        assert pcm.shape == audio.shape and pcm.dtype == np.int16
        assert np.abs(audio).max() <= 1.0
        np.testing.assert_allclose(audio, _np(gen.generate(mel, seed=(seed, 0))), atol=1e-5)
        np.testing.assert_array_equal(pcm, _np(float_to_pcm16(audio)))
        outputs[seed] = audio
    assert np.abs(outputs[0] - outputs[5]).max() > 1e-3  # the seed matters
    # Without a seed: the default (0). Dict-input endpoint, as TFSMLayer calls it.
    np.testing.assert_array_equal(_np(loaded.serving_default({"mel": mel})["audio"]), outputs[0])
    # The output depends on the features (not only on the noise).
    other = loaded.signatures["serving_default"](mel=tf.constant(mel + 1.0),
                                                 seed=tf.constant(0, tf.int64))["audio"]
    assert np.abs(_np(other) - outputs[0]).max() > 1e-3


@pytest.fixture(scope="module")
def chunked(config, tmp_path_factory):
    """The tiny student exported with 4-frame chunks (chunk_seconds 0.05) and loaded back."""
    student = tiny_student(config, seed=3)
    path = str(tmp_path_factory.mktemp("chunked") / "1")
    module = ExportModule(student, config, max_seconds=2.0, chunk_seconds=0.05)
    assert module.metadata()["chunk_frames"] == 4
    module.save(path)
    return student, tf.saved_model.load(path)


def test_chunked_serving_default_equals_the_one_pass(chunked):
    """A request of 30 frames runs as 8 chunks in the graph's while_loop (the last one
    partial) and gives the one-pass audio."""
    student, loaded = chunked
    gen = StudentGenerator(student)
    assert int(loaded.chunk_frames.numpy()) == 4
    for batch, frames in ((1, 30), (2, 9), (1, 3)):
        mel = log_mel_like(batch, frames, seed=frames)
        audio = _np(loaded.signatures["serving_default"](mel=tf.constant(mel),
                                                         seed=tf.constant(2, tf.int64))["audio"])
        assert audio.shape == (batch, frames * 256)
        want = _np(gen.generate(mel, seed=(2, 0)))
        assert np.mean(np.abs(want) >= 1.0) < 0.05  # mostly unclipped: differences show
        np.testing.assert_allclose(audio, want, atol=1e-5)


def _stream(loaded, mel, pushes, seed=0):
    size = int(loaded.stream_state_size.numpy())
    state = tf.zeros([mel.shape[0], size])
    pushed, pieces, f0 = tf.constant(0, tf.int64), [], 0
    step = loaded.signatures["stream_step"]
    for i, n in enumerate(pushes):
        out = step(mel=tf.constant(mel[:, f0:f0 + n]), state=state, pushed=pushed,
                   seed=tf.constant(seed, tf.int64), final=tf.constant(i == len(pushes) - 1))
        f0 += n
        assert out["state"].shape == (mel.shape[0], size)
        pieces.append(_np(out["audio"]))
        state, pushed = out["state"], out["pushed"]
    assert int(pushed) == 0 and not np.any(_np(state))  # `final` resets the stream
    return np.concatenate(pieces, axis=1)


def test_stream_step_equals_serving_default_and_the_streaming_vocoder(chunked):
    """A client carrying `state` and `pushed` between calls of the stateful signature (as
    through TF Serving) gets the audio of one serving_default request, for any pushes."""
    from pwavenet_tf.models.streaming_vocoder import StreamingVocoder

    student, loaded = chunked
    mel = log_mel_like(1, 30, seed=4)
    want = _np(loaded.signatures["serving_default"](mel=tf.constant(mel),
                                                    seed=tf.constant(5, tf.int64))["audio"])
    for pushes in ([30], [0, 1, 7, 9, 13], [1] * 30, [29, 1, 0]):
        np.testing.assert_allclose(_stream(loaded, mel, pushes, seed=5), want, atol=1e-5)
    # The first push's audio lags by the look-ahead frame; the flush brings it.
    # The attribute function applies the defaults (pushed 0, seed 0, not final).
    first = loaded.stream_step(mel=tf.constant(mel[:, :5]),
                               state=tf.zeros([1, int(loaded.stream_state_size)]))
    assert first["audio"].shape == (1, 4 * 256) and int(first["pushed"]) == 5
    # The Python StreamingVocoder runs the same step: same audio.
    vocoder = StreamingVocoder(student, seed=5)
    ours = np.concatenate([vocoder.push(mel[0, :11]), vocoder.push(mel[0, 11:]), vocoder.flush()])
    np.testing.assert_allclose(ours, want[0], atol=1e-5)
    # Batch 2: each row streams on its own noise row.
    mel2 = log_mel_like(2, 6, seed=8)
    rows = _stream(loaded, mel2, [2, 4])
    assert rows.shape == (2, 6 * 256) and np.abs(rows[0] - rows[1]).max() > 1e-3


def test_stream_step_refuses_a_bad_state(chunked):
    _, loaded = chunked
    size = int(loaded.stream_state_size.numpy())
    step = loaded.stream_step
    mel = tf.constant(log_mel_like(1, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"`state` must be .*\[batch, {size}\]"):
        step(mel=mel, state=tf.zeros([1, size + 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`pushed` must be >= 0"):
        step(mel=mel, state=tf.zeros([1, size]), pushed=tf.constant(-1, tf.int64))
    bad = np.zeros([1, size], "float32")
    bad[0, 3] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="`state` contains NaN"):
        step(mel=mel, state=tf.constant(bad))
    with pytest.raises(ValueError, match="`chunk_seconds` must be None or a positive number"):
        ExportModule(tiny_student(load_config("tiny")), load_config("tiny"), chunk_seconds=0)


def test_mel_and_vocode_waveform_use_the_training_front_end(exported, config):
    student, gen, loaded, _ = exported
    audio = (0.1 * np.random.default_rng(1).standard_normal((2, 5 * 256 + 100))).astype("f4")
    out = loaded.signatures["mel"](audio=tf.constant(audio))
    mel = _np(make_log_mel(config.audio)(audio[:, :5 * 256]))
    assert out["mel"].shape == (2, 5, 80) and out["normalized_mel"].shape == (2, 5, 80)
    np.testing.assert_allclose(_np(out["mel"]), mel, atol=1e-5)
    np.testing.assert_allclose(_np(out["normalized_mel"]), _np(student.feature_normalizer(mel)),
                               atol=1e-5)
    voc = loaded.signatures["vocode_waveform"](audio=tf.constant(audio),
                                               seed=tf.constant(3, tf.int64))
    assert voc["audio"].shape == (2, 5 * 256) and voc["audio_pcm16"].dtype == tf.int16
    np.testing.assert_allclose(_np(voc["audio"]), _np(gen.generate(mel, seed=(3, 0))), atol=1e-5)


def test_metadata_travels_inside(exported, config):
    student, _, loaded, path = exported
    assert int(loaded.sample_rate.numpy()) == 22050
    assert int(loaded.hop_length.numpy()) == 256
    assert int(loaded.n_mels.numpy()) == 80
    assert int(loaded.max_frames.numpy()) == MAX_FRAMES
    assert int(loaded.max_samples.numpy()) == MAX_FRAMES * 256
    assert loaded.model_role.numpy() == b"student"
    meta = json.loads(loaded.config_json.numpy().decode())
    assert meta["config"] == json.loads(json.dumps(config.to_dict()))
    assert meta["front_end"]["n_fft"] == 1024 and meta["front_end"]["fmax"] == 8000.0
    assert meta["look_ahead_frames"] == student.upsampler.look_ahead_frames == 1
    with open(loaded.config_file.asset_path.numpy().decode()) as f:
        assert json.load(f) == meta
    with open(loaded.feature_stats_file.asset_path.numpy().decode()) as f:
        stats = json.load(f)
    np.testing.assert_allclose(stats["mean"], _np(student.feature_normalizer.mean), rtol=1e-6)
    np.testing.assert_allclose(_np(loaded.feature_std), _np(student.feature_normalizer.std))
    assert sorted(loaded.signatures) == ["mel", "serving_default", "stream_step",
                                         "vocode_waveform"]


def _bad_mel(**kw):
    return dict(mel=tf.constant(log_mel_like(1, 4)), seed=tf.constant(0, tf.int64), **kw)


def _with_value(value):
    mel = log_mel_like(2, 4)
    mel[1, 2, 3] = value
    return mel


# (signature, inputs, exception, message pattern)
BAD_INPUTS = {
    "rank 2": ("serving_default", {"mel": np.zeros((4, 80), "f4")},
               tf.errors.InvalidArgumentError,
               r"`mel` must be a float32 tensor of shape \[batch, frames, 80\].*\[4 80\]"),
    "rank 4": ("serving_default", {"mel": np.zeros((1, 2, 4, 80), "f4")},
               tf.errors.InvalidArgumentError, r"shape \[batch, frames, 80\].*\[1 2 4 80\]"),
    "n_mels": ("serving_default", {"mel": np.zeros((1, 4, 79), "f4")},
               tf.errors.InvalidArgumentError, r"n_mels=80\), received shape\] \[1 4 79\]"),
    "nan": ("serving_default", {"mel": _with_value(np.nan)}, tf.errors.InvalidArgumentError,
            r"`mel` contains NaN or Inf values: count\] \[1\]"),
    "inf": ("serving_default", {"mel": _with_value(-np.inf)}, tf.errors.InvalidArgumentError,
            r"`mel` contains NaN or Inf"),
    "no frames": ("serving_default", {"mel": np.zeros((1, 0, 80), "f4")},
                  tf.errors.InvalidArgumentError, r"`mel` is empty or too short"),
    "no batch": ("serving_default", {"mel": np.zeros((0, 4, 80), "f4")},
                 tf.errors.InvalidArgumentError, r"`mel` is empty: its batch size is 0"),
    "too long": ("serving_default", {"mel": log_mel_like(1, MAX_FRAMES + 1)},
                 tf.errors.InvalidArgumentError,
                 rf"`mel` is too long: at most {MAX_FRAMES} frames \(max_seconds=0.5 s"),
    "float64 mel": ("serving_default", {"mel": tf.zeros((1, 4, 80), tf.float64)},
                    tf.errors.InvalidArgumentError, r"expected to be a float tensor but is a "
                                                    r"double tensor"),
    "int mel": ("serving_default", {"mel": tf.zeros((1, 4, 80), tf.int32)},
                tf.errors.InvalidArgumentError, r"expected to be a float tensor but is a int32"),
    "int32 seed": ("serving_default", {"seed": tf.constant(1, tf.int32)},
                   tf.errors.InvalidArgumentError, r"expected to be a int64 tensor"),
    "vector seed": ("serving_default", {"seed": tf.constant([1, 2], tf.int64)},
                    tf.errors.InvalidArgumentError,
                    r"`seed` must be an int64 scalar, received shape\] \[2\]"),
    "audio rank": ("vocode_waveform", {"audio": np.zeros((1, 2, 512), "f4")},
                   tf.errors.InvalidArgumentError,
                   r"`audio` must be a float32 tensor of shape \[batch, samples\].*\[1 2 512\]"),
    "audio short": ("vocode_waveform", {"audio": np.zeros((1, 100), "f4")},
                    tf.errors.InvalidArgumentError,
                    r"`audio` is empty or too short: it needs at least 256 samples.*\[100\]"),
    "audio empty": ("mel", {"audio": np.zeros((2, 0), "f4")}, tf.errors.InvalidArgumentError,
                    r"`audio` is empty or too short"),
    "audio nan": ("vocode_waveform", {"audio": np.full((1, 600), np.nan, "f4")},
                  tf.errors.InvalidArgumentError, r"`audio` contains NaN or Inf values: count\] "
                                                  r"\[600\]"),
    "audio too long": ("mel", {"audio": np.zeros((1, (MAX_FRAMES + 1) * 256), "f4")},
                       tf.errors.InvalidArgumentError,
                       rf"`audio` is too long: at most {MAX_FRAMES * 256} samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_invalid_inputs_are_rejected_by_the_loaded_model(exported, case):
    _, _, loaded, _ = exported
    signature, inputs, error, pattern = BAD_INPUTS[case]
    if signature == "serving_default":
        inputs = {**_bad_mel(), **inputs}
    elif signature == "vocode_waveform":
        inputs = {"seed": tf.constant(0, tf.int64), **inputs}
    inputs = {k: tf.constant(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
    with pytest.raises(error, match=pattern):
        loaded.signatures[signature](**inputs)


def test_concurrent_calls_match_single_threaded_calls(exported):
    _, _, loaded, _ = exported
    fn = loaded.signatures["serving_default"]
    requests = [(log_mel_like(1 + i % 3, 2 + i, seed=i), i) for i in range(8)]

    def call(request):
        mel, seed = request
        return _np(fn(mel=tf.constant(mel), seed=tf.constant(seed, tf.int64))["audio"])

    expected = [call(r) for r in requests]
    barrier = threading.Barrier(4)

    def threaded(request):
        barrier.wait(timeout=60) if request[1] < 4 else None  # start the first 4 together
        return call(request)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(threaded, requests + requests))
    for got, want in zip(results, expected + expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_multi_speaker_student_with_40_mel_bands(config):
    """Sizes come from the config (n_mels=40), speaker ids are inputs and are validated."""
    cfg = config.override(audio={"n_mels": 40, "num_speakers": 3})
    student = tiny_student(cfg, seed=2)
    module = ExportModule(student, cfg)
    assert module.metadata()["n_mels"] == 40
    mel = log_mel_like(2, 3, dim=40)
    sid = np.array([2, 0], "int32")
    fn = module.signatures["serving_default"]
    out = fn(tf.constant(mel), tf.constant(sid), tf.constant(9, tf.int64))["audio"]
    want = StudentGenerator(student).generate(mel, sid, seed=(9, 0))
    np.testing.assert_allclose(_np(out), _np(want), atol=1e-5)
    other = fn(tf.constant(mel), tf.constant([1, 0], tf.int32), tf.constant(9, tf.int64))
    assert np.abs(_np(other["audio"])[0] - _np(out)[0]).max() > 1e-4
    np.testing.assert_allclose(_np(other["audio"])[1], _np(out)[1], atol=1e-6)
    # The dict endpoint without a seed uses the default seed 0.
    no_seed = module.serving_default({"mel": mel, "speaker_id": sid})["audio"]
    np.testing.assert_allclose(_np(no_seed), _np(StudentGenerator(student).generate(mel, sid)),
                               atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must lie in \[0, 3\).*\[2 3\]"):
        fn(tf.constant(mel), tf.constant([2, 3], tf.int32), tf.constant(0, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"one id per utterance"):
        fn(tf.constant(mel), tf.constant([1], tf.int32), tf.constant(0, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[batch, frames, 40\]"):
        fn(tf.constant(log_mel_like(2, 3)), tf.constant(sid), tf.constant(0, tf.int64))
    mel_out = module.signatures["mel"](tf.zeros([1, 1000]))
    assert mel_out["mel"].shape == (1, 3, 40)


def test_teacher_export_is_the_cached_generator(config):
    teacher = tiny_teacher(config)
    module = ExportModule(teacher, config)
    assert module.role == "teacher"
    mel = log_mel_like(2, 2, seed=3)
    out = module.signatures["serving_default"](tf.constant(mel), tf.constant(4, tf.int64))
    want = TeacherGenerator(teacher).generate(mel, seed=(4, 0), method="cached")
    assert out["audio"].shape == (2, 512) and out["audio_pcm16"].dtype == tf.int16
    np.testing.assert_allclose(_np(out["audio"]), _np(want), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="contains NaN"):
        module.signatures["serving_default"](tf.constant(mel * np.nan),
                                             tf.constant(0, tf.int64))


def test_bad_arguments(config):
    with pytest.raises(ValueError, match="Only an IAFStudent or a WaveNetTeacher"):
        ExportModule(keras.layers.Dense(3), config)
    student = tiny_student(config)
    for bad in (0, -1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="`max_seconds` must be a positive number"):
            ExportModule(student, config, max_seconds=bad)
    with pytest.raises(ValueError, match="n_mels|conditioning_dim"):
        ExportModule(student, config.override(audio={"n_mels": 40}))


def test_external_feature_model_exports_serving_default_only(config):
    """A model conditioned on external features (audio.feature_dim) has no audio front end."""
    cfg = config.override(audio={"feature_dim": 12})
    student = tiny_student(cfg)
    module = ExportModule(student, cfg)
    assert module.signature_names() == ["serving_default", "stream_step"]
    assert sorted(module.signatures) == ["serving_default", "stream_step"]
    feats = log_mel_like(1, 3, dim=12)
    out = module.signatures["serving_default"](tf.constant(feats), tf.constant(2, tf.int64))
    np.testing.assert_allclose(_np(out["audio"]),
                               _np(StudentGenerator(student).generate(feats, seed=(2, 0))),
                               atol=1e-5)
