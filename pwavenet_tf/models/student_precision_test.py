import numpy as np
import pytest
from keras import ops

from pwavenet_tf.models.student_generator import StudentGenerator
from pwavenet_tf.models.student_precision import (
    PRECISIONS,
    check_precision,
    student_precision,
    student_with_precision,
)
from pwavenet_tf.testing.students import tiny_student


def _features(frames=12, seed=0):
    return np.random.default_rng(seed).normal(size=(1, frames, 5)).astype("float32")


def test_bfloat16_student_has_float32_variables_and_audio():
    student = tiny_student()
    bf16 = student_with_precision(student, "bfloat16")
    assert bf16 is not student
    assert student_precision(student) == "float32"
    assert student_precision(bf16) == "bfloat16"
    assert bf16.upsampler.compute_dtype == "bfloat16"
    assert all(flow.compute_dtype == "bfloat16" for flow in bf16.flows)
    # mu and log_s come from a float32 projection; every variable is float32.
    assert all(flow.output_proj.compute_dtype == "float32" for flow in bf16.flows)
    assert len(bf16.weights) == len(student.weights) > 0
    assert {w.dtype for w in bf16.weights} == {"float32"}
    for a, b in zip(student.weights, bf16.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))

    feats = _features()
    audio32 = StudentGenerator(student).generate(feats, seed=(3, 0))
    audio16 = StudentGenerator(bf16).generate(feats, seed=(3, 0))
    assert audio16.dtype == "float32" and audio16.shape == audio32.shape == (1, 48)
    a32, a16 = ops.convert_to_numpy(audio32), ops.convert_to_numpy(audio16)
    assert np.all(np.isfinite(a16))
    diff = np.max(np.abs(a16 - a32))
    # bfloat16 has an 8-bit mantissa: a real but small difference (measured 1e-3 here).
    assert 0 < diff < 0.05 * np.max(np.abs(a32)) + 1e-3, diff

    outputs = bf16({"noise": np.zeros((1, 48), "float32"), "features": feats})
    assert {k: ops.convert_to_numpy(v).dtype.name for k, v in outputs.items()} == {
        "audio": "float32", "mu_tot": "float32", "log_s_tot": "float32"}


def test_same_precision_is_the_same_object_and_back_to_float32_is_equal():
    student = tiny_student()
    assert student_with_precision(student, "float32") is student
    bf16 = student_with_precision(student, "bfloat16")
    assert student_with_precision(bf16, "bfloat16") is bf16
    back = student_with_precision(bf16, "float32")
    assert student_precision(back) == "float32"
    feats = _features()
    np.testing.assert_array_equal(
        ops.convert_to_numpy(StudentGenerator(back).generate(feats, seed=(1, 0))),
        ops.convert_to_numpy(StudentGenerator(student).generate(feats, seed=(1, 0))))


def test_bfloat16_student_streams_close_to_its_one_pass_audio():
    from pwavenet_tf.inference import stream_student

    bf16 = student_with_precision(tiny_student(), "bfloat16")
    feats = _features(frames=13)
    one_pass = ops.convert_to_numpy(StudentGenerator(bf16).generate(feats, seed=(5, 0)))[0]
    streamed = np.concatenate(list(stream_student(bf16, feats[0], seed=5, chunk_frames=4)))
    assert streamed.dtype == np.float32 and streamed.shape == one_pass.shape == (52,)
    # Not bit-equal: bfloat16 rounding depends on the shape of each convolution.
    assert np.max(np.abs(streamed - one_pass)) < 0.05 * np.max(np.abs(one_pass)) + 1e-3


def test_bad_precisions_and_models_are_refused():
    assert PRECISIONS == ("float32", "bfloat16")
    assert check_precision("bfloat16") == "bfloat16"
    for bad in ("float16", "bf16", "off", None):
        with pytest.raises(ValueError, match="`precision` must be one of float32, bfloat16. "
                                             "Received: precision="):
            student_with_precision(tiny_student(), bad)
    with pytest.raises(ValueError, match="must be an IAFStudent.*Received: student=str"):
        student_with_precision("not a student", "bfloat16")


def test_load_model_applies_the_precision_to_the_student_and_refuses_a_teacher():
    from pwavenet_tf.inference import load_model

    role, model, _ = load_model("ljspeech_mini", precision="bfloat16")
    assert role == "student" and student_precision(model) == "bfloat16"
    assert {w.dtype for w in model.weights} == {"float32"}
    with pytest.raises(ValueError, match="^--precision bfloat16 applies to the student only; "
                                         "ljspeech_mini gives a teacher"):
        load_model("ljspeech_mini", role="teacher", precision="bfloat16")
    with pytest.raises(ValueError, match="Received: precision='float64'"):
        load_model("ljspeech_mini", precision="float64")
