import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from pwavenet_tf.config import Config
from pwavenet_tf.models.iaf_student import IAFStudent

TINY = dict(conditioning_dim=5, flow_layers=(2, 2), dilation_cycle=2, channels=8,
            conditioning_channels=6, upsample_factors=(2, 2))


def _np(x):
    return ops.convert_to_numpy(x)


def _student(seed=1, **overrides):
    """A tiny, seeded student with non-zero output kernels (they start at zero).

    s_tot starts at exp(-1): with much smaller scales the sequential inverse amplifies
    float rounding by ~|dmu/dz| / s per step and stops being a useful check.
    """
    keras.utils.set_random_seed(seed)
    student = IAFStudent(**dict(TINY, initial_log_scale=-1.0, **overrides))
    r = np.random.default_rng(seed)
    for flow in student.flows:
        kernel = flow.output_proj.kernel
        kernel.assign(r.normal(0, 0.2, size=kernel.shape))
    return student


def _inputs(batch=2, frames=6, speakers=0, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {
        "noise": rng.logistic(size=(batch, frames * 4)).astype("float32"),
        "features": rng.normal(size=(batch, frames, 5)).astype("float32"),
    }
    if speakers:
        inputs["speaker_id"] = np.arange(batch, dtype="int32") % speakers
    return inputs


def _outputs(student, inputs):
    return {k: _np(v) for k, v in student(inputs).items()}


def test_shapes_receptive_field_and_initial_scale():
    student = IAFStudent(**TINY)
    inputs = _inputs()
    out = _outputs(student, inputs)
    assert sorted(out) == ["audio", "log_s_tot", "mu_tot"]
    assert all(v.shape == (2, 24) and v.dtype == np.float32 for v in out.values())
    assert student.hop_length == 4 and not student.multi_speaker
    assert student.receptive_field == 2 * 7  # per flow: dilations 1, 2 -> 2 * 3 + 1
    # At initialisation x = z * exp(initial_log_scale), s_tot = exp(-3) ~= 0.05.
    np.testing.assert_allclose(out["log_s_tot"], -3.0, atol=1e-5)
    np.testing.assert_allclose(out["mu_tot"], 0.0, atol=1e-6)
    np.testing.assert_allclose(out["audio"], inputs["noise"] * np.exp(-3.0), rtol=1e-4)


def test_autoregressive_property():
    student = _student()
    inputs = _inputs()
    a = _outputs(student, inputs)
    t = 9
    inputs["noise"][:, t] += 1.0
    b = _outputs(student, inputs)
    np.testing.assert_array_equal(a["audio"][:, :t], b["audio"][:, :t])
    for k in ("mu_tot", "log_s_tot"):
        np.testing.assert_array_equal(a[k][:, :t + 1], b[k][:, :t + 1])  # depend on z_<t
        assert np.abs(a[k][:, t + 1] - b[k][:, t + 1]).max() > 1e-6
    assert np.all(np.abs(a["audio"][:, t] - b["audio"][:, t]) > 1e-4)
    assert np.abs(a["audio"][:, t + 1:] - b["audio"][:, t + 1:]).max() > 1e-5


def test_running_update_equals_closed_form():
    student = _student()
    inputs = _inputs()
    out = _outputs(student, inputs)
    z = inputs["noise"]
    np.testing.assert_allclose(out["audio"], z * np.exp(out["log_s_tot"]) + out["mu_tot"],
                               atol=1e-5)
    # Per-flow values from the flows themselves.
    cond = student.upsample_conditioning(inputs["features"])
    x, mus, scales = z, [], []
    for flow in student.flows:
        mu, log_s = (_np(v) for v in flow(x, cond))
        x = x * np.exp(log_s) + mu
        mus.append(mu)
        scales.append(np.exp(log_s))
    n = len(mus)
    mu_closed = sum(mus[i] * np.prod(scales[i + 1:], axis=0) for i in range(n))
    np.testing.assert_allclose(out["mu_tot"], mu_closed, atol=1e-5)
    np.testing.assert_allclose(np.exp(out["log_s_tot"]), np.prod(scales, axis=0), rtol=1e-5)
    np.testing.assert_allclose(out["audio"], x, atol=1e-5)


def test_output_highpass_is_a_shift_of_mu_tot():
    """With the output high-pass, audio = z * s_tot + mu_tot still holds (mu_tot carries
    the high-pass's shift, log_s_tot is unchanged), and the audio is the flows' output
    high-passed."""
    plain, filtered = _student(), _student(output_highpass=0.05)
    inputs = _inputs(frames=40)
    a, b = _outputs(plain, inputs), _outputs(filtered, inputs)
    np.testing.assert_allclose(b["log_s_tot"], a["log_s_tot"], atol=1e-6)
    np.testing.assert_allclose(b["audio"], inputs["noise"] * np.exp(b["log_s_tot"])
                               + b["mu_tot"], atol=1e-5)
    np.testing.assert_allclose(b["audio"], _np(filtered.highpass(a["audio"])), atol=1e-5)
    assert np.abs(b["audio"] - a["audio"]).max() > 1e-3
    assert IAFStudent.from_config(filtered.get_config()).output_highpass == 0.05
    with pytest.raises(ValueError, match="output_highpass"):
        IAFStudent(**dict(TINY, output_highpass=0.5))


@pytest.mark.parametrize("highpass", [0.0, 0.05])
def test_inverse_log_det_and_jacobian(highpass):
    student = _student(output_highpass=highpass)
    inputs = _inputs(batch=1, frames=4)
    z, feats = inputs["noise"], inputs["features"]
    out = _outputs(student, inputs)
    np.testing.assert_allclose(_np(student.inverse(out["audio"], feats)), z, atol=1e-4)
    chain = student.bijector(feats)
    fldj = _np(chain.forward_log_det_jacobian(z, event_ndims=1))
    np.testing.assert_allclose(fldj, out["log_s_tot"].sum(-1), atol=1e-4)
    np.testing.assert_allclose(_np(chain.forward(z)), out["audio"], atol=1e-6)
    # Numerical Jacobian dx/dz: lower triangular with diagonal s_tot.
    zt = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(zt)
        x = student({"noise": zt, "features": tf.constant(feats)})["audio"]
    # (pfor, the default vectorisation, crashes on these convolutions on CPU.)
    jac = _np(tape.jacobian(x, zt, experimental_use_pfor=False))[0, :, 0, :]  # [T, T]
    np.testing.assert_array_equal(np.triu(jac, 1), 0.0)
    np.testing.assert_allclose(np.diag(jac), np.exp(out["log_s_tot"][0]), rtol=1e-4)
    sign, logdet = np.linalg.slogdet(jac.astype("float64"))
    assert sign > 0
    np.testing.assert_allclose(logdet, fldj[0], atol=1e-3)


def test_distribution_log_prob():
    student = _student()
    inputs = _inputs(frames=4)
    z, feats = inputs["noise"], inputs["features"]
    out = _outputs(student, inputs)
    dist = student.distribution(feats)
    assert dist.batch_shape == (2,) and dist.event_shape == (16,)
    lp = _np(student.log_prob(out["audio"], feats))
    logistic = tfp.distributions.Logistic(0.0, 1.0)
    base = _np(logistic.log_prob(z)).sum(-1)
    np.testing.assert_allclose(lp, base - out["log_s_tot"].sum(-1), atol=1e-3)
    per_step = tfp.distributions.Logistic(out["mu_tot"], np.exp(out["log_s_tot"]))
    np.testing.assert_allclose(lp, _np(per_step.log_prob(out["audio"])).sum(-1), atol=1e-3)
    np.testing.assert_allclose(_np(dist.log_prob(out["audio"])), lp, atol=1e-5)
    assert tuple(dist.sample(seed=(1, 2)).shape) == (2, 16)


def test_global_conditioning():
    student = _student(num_speakers=3)
    assert student.multi_speaker
    inputs = _inputs(speakers=3)
    a = _outputs(student, inputs)["audio"]
    inputs["speaker_id"] = (inputs["speaker_id"] + 1) % 3
    b = _outputs(student, inputs)["audio"]
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_allclose(
        _np(student.inverse(b, inputs["features"], inputs["speaker_id"])), inputs["noise"],
        atol=1e-4)


def test_config_and_saving_round_trip(tmp_path):
    student = _student(num_speakers=2, feature_mean=[1.0] * 5, feature_std=[2.0] * 5)
    inputs = _inputs(speakers=2)
    out = _outputs(student, inputs)
    revived = IAFStudent.from_config(student.get_config())
    assert revived.get_config() == student.get_config()
    path = os.path.join(tmp_path, "student.keras")
    student.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, IAFStudent)
    for k, v in _outputs(loaded, inputs).items():
        np.testing.assert_allclose(v, out[k], atol=1e-6)


def test_from_pwavenet_config():
    config = Config.from_dict({
        "audio": {"hop_length": 4, "n_fft": 16, "n_mels": 5, "num_speakers": 2},
        "teacher": {"upsample_factors": [2, 2]},
        "student": {"flow_layers": [1, 2], "channels": 8, "conditioning_channels": 6,
                    "upsample_factors": [2, 2], "dilation_cycle": 2},
        "teacher_training": {"window_samples": 64},
        "distill": {"window_samples": 64},
    })
    student = IAFStudent.from_pwavenet_config(config, feature_mean=[0.5] * 5)
    assert student.flow_layers == [1, 2] and student.multi_speaker
    assert student.get_config()["feature_mean"] == [0.5] * 5
    out = student(_inputs(speakers=2))
    assert tuple(out["audio"].shape) == (2, 24)


def test_bad_inputs():
    with pytest.raises(ValueError, match="flow_layers"):
        IAFStudent(**dict(TINY, flow_layers=()))
    with pytest.raises(ValueError, match="initial_log_scale"):
        IAFStudent(**dict(TINY, initial_log_scale=-20.0))
    student = IAFStudent(**TINY)
    inputs = _inputs(frames=3)
    with pytest.raises(ValueError, match="features"):
        student.bijector(inputs["features"][..., :4])
    with pytest.raises(ValueError, match="10 samples.*3 frames"):
        student.log_prob(inputs["noise"][:, :10], inputs["features"])
    with pytest.raises(ValueError, match="audio"):
        student.inverse(inputs["noise"][:, :10], inputs["features"])
    with pytest.raises(ValueError, match="speaker_id"):
        _student(num_speakers=3).distribution(inputs["features"])
    with pytest.raises(ValueError, match="speaker_id.shape"):
        _student(num_speakers=3).distribution(inputs["features"], speaker_id=1)


@pytest.mark.parametrize("policy,half,tolerance", [("mixed_bfloat16", "bfloat16", 0.05),
                                                   ("mixed_float16", "float16", 0.01)])
def test_mixed_precision_keeps_the_running_scale_and_outputs_float32(policy, half, tolerance):
    """Products in half precision; x, mu_tot and log_s_tot (the running update) in float32,
    and close to the float32 student with the same weights."""
    reference = _student()
    student = IAFStudent(**dict(TINY, initial_log_scale=-1.0), dtype=policy)
    student.set_weights(reference.get_weights())
    assert student.flows[0].compute_dtype == half
    inputs = _inputs()
    got = student(inputs)
    want = _outputs(reference, inputs)
    for key in ("audio", "mu_tot", "log_s_tot"):
        assert keras.backend.standardize_dtype(got[key].dtype) == "float32", key
        np.testing.assert_allclose(_np(got[key]), want[key], atol=tolerance, err_msg=key)
