import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from pwavenet_tf.models.iaf_student import IAFStudent
from pwavenet_tf.models.student_growth import grow_student_weights

TINY = dict(conditioning_dim=5, dilation_cycle=2, channels=8, conditioning_channels=6,
            upsample_factors=(2, 2), initial_log_scale=-1.0, output_highpass_hz=0.0)


def _student(flow_layers, seed, **overrides):
    keras.utils.set_random_seed(seed)
    student = IAFStudent(**dict(TINY, flow_layers=flow_layers, **overrides))
    inputs = _inputs()
    if overrides.get("num_speakers"):
        inputs["speaker_id"] = np.zeros(2, dtype="int32")
    student(inputs)  # build
    return student


def _trained(flow_layers=(2, 3), seed=1, **overrides):
    """A student whose every weight matters (the output kernels start at zero)."""
    student = _student(flow_layers, seed, **overrides)
    r = np.random.default_rng(seed)
    for w in student.trainable_weights:
        w.assign(np.asarray(w) + r.normal(0, 0.1, size=w.shape).astype("float32"))
    return student


def _inputs(batch=2, frames=12, seed=0):
    rng = np.random.default_rng(seed)
    return {"noise": rng.logistic(size=(batch, frames * 4)).astype("float32"),
            "features": rng.normal(size=(batch, frames, 5)).astype("float32")}


def _outputs(student, inputs):
    return {k: ops.convert_to_numpy(v) for k, v in student(inputs).items()}


def test_grown_student_has_the_source_output_and_learns_in_the_new_blocks():
    source = _trained((2, 3))
    grown = _student((4, 6), seed=5)  # its own random weights, overwritten below
    inputs = _inputs()
    before = _outputs(grown, inputs)
    appended = grow_student_weights(source, grown)
    assert appended == ["flow_0/block_2", "flow_0/block_3", "flow_1/block_3",
                        "flow_1/block_4", "flow_1/block_5"]
    want, got = _outputs(source, inputs), _outputs(grown, inputs)
    assert np.max(np.abs(before["audio"] - want["audio"])) > 1e-2  # the copy did something
    for key in ("audio", "mu_tot", "log_s_tot"):
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=1e-5, err_msg=key)
    # The receptive field grew: the appended blocks continue the dilation cycle (1, 2).
    assert grown.flows[0].dilations == [1, 2, 1, 2]
    assert grown.receptive_field > source.receptive_field
    # The appended blocks get a gradient on their first step (residual projections).
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(grown(inputs)["audio"]))
    new_kernels = [grown.flows[1].blocks[i].residual_proj.kernel for i in (3, 4, 5)]
    grads = tape.gradient(loss, new_kernels)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 1e-6 for g in grads)


def test_growth_with_speakers_copies_the_speaker_embedding():
    source = _trained((2, 2), seed=3, num_speakers=3, speaker_channels=4)
    grown = _student((3, 2), seed=4, num_speakers=3, speaker_channels=4)
    grow_student_weights(source, grown)
    inputs = dict(_inputs(), speaker_id=np.array([0, 2], dtype="int32"))
    np.testing.assert_allclose(_outputs(grown, inputs)["audio"],
                               _outputs(source, inputs)["audio"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("flow_layers, overrides, match", [
    ((2,), {}, r"as many flows as the source\. Received: 2 flows -> 1"),
    ((1, 3), {}, r"Flow 0 of the grown student has fewer layers .* Received: 2 -> 1"),
    ((2, 3), {"channels": 16}, r"Weight 'flow_0/.*' differs in shape; grow only"),
    ((2, 3), {"dilation_cycle": 3}, r"Flow 1's existing layers must keep their dilations"),
])
def test_growth_that_is_not_deeper_flows_is_refused_by_name(flow_layers, overrides, match):
    source = _trained((2, 3))
    target = _student(flow_layers, seed=2, **overrides)
    with pytest.raises(ValueError, match=match):
        grow_student_weights(source, target)


def _adam_step(student, optimizer, inputs):
    with tf.GradientTape() as tape:
        out = student(inputs)
        loss = tf.reduce_mean(tf.square(out["audio"] - 0.3)) + tf.reduce_mean(out["log_s_tot"])
    variables = student.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))


def test_grown_optimizer_state_continues_the_source_run():
    """With the source run's Adam moments (and the same step count), one more step moves
    every shared weight of the grown student exactly as it moves the source's; the
    appended blocks' moments start at zero."""
    from pwavenet_tf.models.student_growth import grow_optimizer_state

    source = _trained((2, 3))
    source_opt = keras.optimizers.Adam(1e-2)
    for seed in range(3):  # moments that are not zero
        _adam_step(source, source_opt, _inputs(seed=seed))
    grown = _student((4, 6), seed=5)
    grow_student_weights(source, grown)
    grown_opt = keras.optimizers.Adam(1e-2)
    grown_opt.build(grown.trainable_variables)
    assert grow_optimizer_state(source, source_opt, grown, grown_opt) == \
        len(source.trainable_variables)
    old = {w.path for w in source.trainable_variables}
    for w in grown.trainable_variables:
        j = grown_opt._get_variable_index(w)
        if w.path not in old:
            assert not np.any(np.asarray(grown_opt._momentums[j])), w.path
            assert not np.any(np.asarray(grown_opt._velocities[j])), w.path
    kernel = grown.flows[1].output_proj.kernel
    i = source_opt._get_variable_index(source.flows[1].output_proj.kernel)
    np.testing.assert_allclose(np.asarray(grown_opt._momentums[grown_opt._get_variable_index(
        kernel)]) * 2.0 ** 1.5, np.asarray(source_opt._momentums[i]), rtol=1e-5)

    grown_opt.iterations.assign(source_opt.iterations)
    before_s = {w.path: np.asarray(w) for w in source.trainable_variables}
    before_g = {w.path: np.asarray(w) for w in grown.trainable_variables}
    _adam_step(source, source_opt, _inputs(seed=9))
    _adam_step(grown, grown_opt, _inputs(seed=9))
    moved = 0
    for w in source.trainable_variables:
        delta_s = np.asarray(w) - before_s[w.path]
        g = next(v for v in grown.trainable_variables if v.path == w.path)
        delta_g = np.asarray(g) - before_g[w.path]
        np.testing.assert_allclose(delta_g, delta_s, atol=2e-6, rtol=1e-3, err_msg=w.path)
        moved += np.max(np.abs(delta_s)) > 1e-4
    assert moved > len(before_s) // 2  # the comparison is not between still weights


def test_fresh_moments_move_the_shared_weights_differently():
    """The same step without the carried moments does not continue the source run (the
    test above can fail)."""
    source = _trained((2, 3))
    source_opt = keras.optimizers.Adam(1e-2)
    for seed in range(3):
        _adam_step(source, source_opt, _inputs(seed=seed))
    grown = _student((4, 6), seed=5)
    grow_student_weights(source, grown)
    grown_opt = keras.optimizers.Adam(1e-2)
    grown_opt.build(grown.trainable_variables)
    grown_opt.iterations.assign(source_opt.iterations)
    w = source.flows[0].blocks[0].conditioning_proj.kernel
    g = next(v for v in grown.trainable_variables if v.path == w.path)
    a, b = np.asarray(w), np.asarray(g)
    _adam_step(source, source_opt, _inputs(seed=9))
    _adam_step(grown, grown_opt, _inputs(seed=9))
    assert np.max(np.abs((np.asarray(g) - b) - (np.asarray(w) - a))) > 1e-3
