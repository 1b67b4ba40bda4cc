"""TFLite conversion of the student: same audio as the SavedModel's serving function."""

import time

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.config import load_config
from pwavenet_tf.export.export_module import ExportModule
from pwavenet_tf.export.export_module_test import log_mel_like, tiny_student, tiny_teacher
from pwavenet_tf.export.tflite import TFLiteRunner, convert_student_to_tflite, tflite_noise


def _best_of(fn, repeats=3):
    fn()  # warm-up (tracing / allocation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_tflite_student_matches_the_saved_model_function():
    config = load_config("tiny")
    student = tiny_student(config, seed=4)
    runner = TFLiteRunner(convert_student_to_tflite(student), num_threads=1)
    serve = ExportModule(student, config).signatures["serving_default"]  # what is saved
    for frames, seed in ((9, 0), (86, 3)):  # dynamic length: resized between calls
        mel = log_mel_like(1, frames, seed=seed)
        want = serve(tf.constant(mel), tf.constant(seed, tf.int64))["audio"].numpy()
        got = runner(mel, tflite_noise(frames, 256, seed))
        assert got.shape == (1, frames * 256) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-4)

    # Speed on 1 s of audio (single thread for TFLite; the SavedModel uses its defaults).
    frames = 86
    mel = log_mel_like(1, frames)
    noise = tflite_noise(frames, 256, 0)
    t_lite = _best_of(lambda: runner(mel, noise))
    t_saved = _best_of(lambda: serve(tf.constant(mel), tf.constant(0, tf.int64)))
    seconds = frames * 256 / 22050
    print(f"tiny student, {seconds:.2f} s of audio: TFLite {t_lite * 1e3:.1f} ms "
          f"(RTF {t_lite / seconds:.4f}), SavedModel function {t_saved * 1e3:.1f} ms "
          f"(RTF {t_saved / seconds:.4f})")


def test_fixed_length_conversion_and_errors():
    config = load_config("tiny")
    student = tiny_student(config)
    runner = TFLiteRunner(convert_student_to_tflite(student, frames=4))
    details = runner.interpreter.get_input_details()
    assert sorted(tuple(d["shape"]) for d in details) == [(1, 4, 80), (1, 1024)]
    assert runner(log_mel_like(1, 4), tflite_noise(4, 256)).shape == (1, 1024)
    with pytest.raises(ValueError, match="Only the IAF student converts"):
        convert_student_to_tflite(tiny_teacher(config))
    with pytest.raises(ValueError, match="`frames` must be None or a positive integer"):
        convert_student_to_tflite(student, frames=0)


@pytest.mark.parametrize("chunk,shipped_options", [(1, False), (4, False), (7, False),
                                                   (4, True)])
def test_tflite_streaming_step_equals_the_streaming_vocoder(chunk, shipped_options):
    """Pushes of several sizes through the TFLite streaming step give the audio of
    StreamingVocoder (and so of the one pass and the SavedModel) for the same seed; also
    with the bundled student's interpolating upsampler and output high-pass."""
    import dataclasses

    from pwavenet_tf.export.tflite import (TFLiteStreamingVocoder,
                                           convert_student_stream_to_tflite, stream_metadata)
    from pwavenet_tf.models.student_generator import StudentGenerator

    config = load_config("tiny")
    if shipped_options:
        config = dataclasses.replace(config, student=dataclasses.replace(
            config.student, upsampler_interpolation="linear", output_highpass_hz=60.0))
    student = tiny_student(config, seed=6)
    content = convert_student_stream_to_tflite(student, chunk)
    meta = stream_metadata(student, chunk)
    mel = log_mel_like(1, 23, seed=chunk)[0]
    want = StudentGenerator(student).generate(mel[None], seed=(3, 0)).numpy()[0]
    assert np.mean(np.abs(want) >= 1.0) < 0.05
    vocoder = TFLiteStreamingVocoder(meta, model_content=content, seed=3, num_threads=1)
    for pushes in ([23], [1, 5, 0, 9, 8], [2] * 11 + [1]):
        pieces, f0 = [], 0
        for n in pushes:
            pieces.append(vocoder.push(mel[f0:f0 + n]))
            f0 += n
        pieces.append(vocoder.flush())
        got = np.concatenate(pieces)
        assert got.shape == (23 * 256,)
        np.testing.assert_allclose(got, want, atol=1e-4)
    # The first audio comes once a chunk and its look-ahead are there.
    half = student.upsampler.look_ahead_frames
    assert half == (3 if shipped_options else 1)
    assert vocoder.push(mel[:chunk + half - 1]).size == 0
    assert vocoder.push(mel[chunk + half - 1:chunk + half]).size == chunk * 256
    details = {tuple(d["shape"]) for d in vocoder.interpreter.get_input_details()}
    assert details == {(1, chunk + 2 * half, 80), (1, chunk * 256),
                       (1, meta["stream_state_size"])}
    with pytest.raises(ValueError, match="`chunk_frames` must be a positive integer"):
        convert_student_stream_to_tflite(student, 0)
    with pytest.raises(ValueError, match=r"`frames` must be \[frames, 80\]"):
        vocoder.push(np.zeros((3, 40)))
