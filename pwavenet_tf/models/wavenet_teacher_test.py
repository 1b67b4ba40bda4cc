import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from pwavenet_tf.models.teacher_generator import TeacherGenerator, draw_uniforms
from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher

TINY = dict(conditioning_dim=5, num_layers=4, num_cycles=2, residual_channels=8,
            gate_channels=8, skip_channels=8, num_mixtures=3, conditioning_channels=6,
            upsample_factors=[2, 2])


def _inputs(batch=2, frames=6, dim=5, speakers=0, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {
        "audio": rng.uniform(-0.5, 0.5, size=(batch, frames * 4)).astype("float32"),
        "features": rng.normal(size=(batch, frames, dim)).astype("float32"),
    }
    if speakers:
        inputs["speaker_id"] = np.arange(batch, dtype="int32") % speakers
    return inputs


def test_output_shape_and_receptive_field():
    teacher = WaveNetTeacher(**TINY)
    params = teacher(_inputs())
    assert tuple(params.shape) == (2, 24, 9)
    assert params.dtype == "float32"
    # dilations 1, 2, 1, 2 with k = 3: 2 * 6 + 1
    assert teacher.receptive_field == 13
    paper = dict(TINY, num_layers=30, num_cycles=3)
    assert WaveNetTeacher(**paper).receptive_field == 6139


def test_is_causal():
    teacher = WaveNetTeacher(**TINY)
    inputs = _inputs()
    a = ops.convert_to_numpy(teacher(inputs))
    inputs["audio"][:, 10] += 0.3
    b = ops.convert_to_numpy(teacher(inputs))
    np.testing.assert_array_equal(a[:, :11], b[:, :11])  # x_10 first affects position 11
    assert np.abs(a[:, 11] - b[:, 11]).max() > 1e-6


@pytest.mark.parametrize("filter_size", [2, 3])
@pytest.mark.parametrize("speakers", [0, 3])
def test_cached_step_equals_full_pass(filter_size, speakers):
    teacher = WaveNetTeacher(**dict(TINY, filter_size=filter_size, num_speakers=speakers))
    # Non-trivial biases so that zero padding vs. real history matters.
    for w in teacher.weights:
        if w.path.endswith("bias"):
            w.assign(np.random.default_rng(1).normal(0, 0.3, size=w.shape))
    inputs = _inputs(speakers=speakers)
    full = ops.convert_to_numpy(teacher(inputs))
    gen = TeacherGenerator(teacher)
    stepped = ops.convert_to_numpy(
        gen.step_params(inputs["audio"], inputs["features"], inputs.get("speaker_id"))
    )
    np.testing.assert_allclose(stepped, full, atol=1e-4)


def _random_biases(teacher, seed=1):
    for w in teacher.weights:
        if w.path.endswith("bias"):
            w.assign(np.random.default_rng(seed).normal(0, 0.3, size=w.shape))


@pytest.mark.parametrize("jit", [False, True])
def test_cached_loop_equals_full_pass_at_batch_4_across_chunks(jit):
    """The generation loop itself (ring buffers, conditioning projected per chunk, fused
    residual+skip matmuls), teacher-forced: 24 samples in chunks of 5 (the last partial)."""
    teacher = WaveNetTeacher(**dict(TINY, num_speakers=3))
    _random_biases(teacher)
    inputs = _inputs(batch=4, speakers=3, seed=2)
    full = ops.convert_to_numpy(teacher(inputs))
    gen = TeacherGenerator(teacher, jit_compile=jit, chunk_samples=5)
    stepped = ops.convert_to_numpy(
        gen.step_params(inputs["audio"], inputs["features"], inputs["speaker_id"]))
    assert stepped.shape == full.shape == (4, 24, 9)
    np.testing.assert_allclose(stepped, full, atol=1e-4)


def test_layer_by_layer_ring_step_equals_full_pass():
    teacher = WaveNetTeacher(**TINY)
    _random_biases(teacher)
    inputs = _inputs(batch=3)
    full = ops.convert_to_numpy(teacher(inputs))
    conditioning = teacher.upsample_conditioning(inputs["features"])
    state = teacher.initial_state(3)
    x_prev = np.zeros([3], "float32")
    for t in range(24):
        params, state = teacher.step(x_prev, conditioning[:, t], None, state, position=t)
        np.testing.assert_allclose(ops.convert_to_numpy(params), full[:, t], atol=1e-4)
        x_prev = inputs["audio"][:, t]


def test_batch_4_generation_equals_4_separate_generations():
    """Same per-utterance noise (the uniforms of utterance i of the batch), same audio:
    the batched loop shares nothing between utterances."""
    teacher = WaveNetTeacher(**dict(TINY, num_speakers=3))
    _random_biases(teacher)
    inputs = _inputs(batch=4, frames=5, speakers=3, seed=3)
    feats = tf.constant(inputs["features"])
    speakers = tf.constant(inputs["speaker_id"])
    uniforms = draw_uniforms(4, 20, (7, 8))
    gen = TeacherGenerator(teacher, chunk_samples=6)
    batched = ops.convert_to_numpy(gen._cached_fn(feats, speakers, uniforms))
    for i in range(4):
        alone = ops.convert_to_numpy(gen._cached_fn(feats[i:i + 1], speakers[i:i + 1],
                                                    uniforms[:, i:i + 1]))
        np.testing.assert_allclose(alone[0], batched[i], atol=1e-4)
    assert np.abs(batched[0] - batched[1]).max() > 1e-3


def test_generation_leaves_the_weights_and_their_names_unchanged():
    teacher = WaveNetTeacher(**TINY)
    before = {w.path: ops.convert_to_numpy(w) for w in teacher.weights}
    TeacherGenerator(teacher).generate(_inputs(frames=2)["features"])
    TeacherGenerator(teacher, jit_compile=True).generate(_inputs(frames=2)["features"])
    after = {w.path: ops.convert_to_numpy(w) for w in teacher.weights}
    assert sorted(after) == sorted(before)
    for path, value in before.items():
        np.testing.assert_array_equal(after[path], value)


def test_cached_and_naive_generation_agree():
    teacher = WaveNetTeacher(**TINY)
    feats = _inputs(frames=8)["features"]
    gen = TeacherGenerator(teacher)
    cached = ops.convert_to_numpy(gen.generate(feats, seed=(3, 4), method="cached"))
    naive = ops.convert_to_numpy(gen.generate(feats, seed=(3, 4), method="naive"))
    assert cached.shape == (2, 32) and cached.dtype == np.float32
    assert np.all(np.abs(cached) <= 1.0)
    np.testing.assert_allclose(cached, naive, atol=1e-4)
    other = ops.convert_to_numpy(gen.generate(feats, seed=(5, 4), method="cached"))
    assert np.abs(other - cached).max() > 1e-3


def test_generation_with_xla_matches_graph_mode():
    teacher = WaveNetTeacher(**TINY)
    graph, xla = TeacherGenerator(teacher), TeacherGenerator(teacher, jit_compile=True)
    for frames in (4, 3):  # a second length: the retraced loop with unknown length
        feats = _inputs(frames=frames)["features"]
        a = ops.convert_to_numpy(graph.generate(feats, seed=(1, 1)))
        b = ops.convert_to_numpy(xla.generate(feats, seed=(1, 1)))
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_mu_law_output():
    teacher = WaveNetTeacher(**dict(TINY, output_distribution="mu_law", mu_law_channels=256))
    inputs = _inputs()
    assert tuple(teacher(inputs).shape) == (2, 24, 256)
    loss = teacher.make_loss()(inputs["audio"], teacher(inputs))
    assert abs(float(loss) - np.log(256)) < 0.5  # near uniform at init


def test_config_and_saving_round_trip(tmp_path):
    teacher = WaveNetTeacher(**dict(TINY, num_speakers=2), feature_mean=[1.0] * 5,
                             feature_std=[2.0] * 5)
    inputs = _inputs(speakers=2)
    out = ops.convert_to_numpy(teacher(inputs))
    revived = WaveNetTeacher.from_config(teacher.get_config())
    assert revived.get_config() == teacher.get_config()
    path = os.path.join(tmp_path, "teacher.keras")
    teacher.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, WaveNetTeacher)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(inputs)), out, atol=1e-6)


def test_fit_one_step_lowers_nothing_to_nan():
    teacher = WaveNetTeacher(**TINY)
    inputs = _inputs()
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3), loss=teacher.make_loss())
    history = teacher.fit(inputs, inputs["audio"], epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="output_distribution"):
        WaveNetTeacher(**dict(TINY, output_distribution="gaussian"))
    with pytest.raises(ValueError, match="num_cycles"):
        WaveNetTeacher(**dict(TINY, num_layers=5))
    gen = TeacherGenerator(WaveNetTeacher(**TINY))
    with pytest.raises(ValueError, match="method"):
        gen.generate(np.zeros((1, 2, 5)), method="fast")
    with pytest.raises(ValueError, match="features"):
        gen.generate(np.zeros((1, 2, 7)))
    with pytest.raises(ValueError, match="chunk_samples"):
        TeacherGenerator(WaveNetTeacher(**TINY), chunk_samples=0)


@pytest.mark.parametrize("policy,half", [("mixed_float16", "float16"),
                                         ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_keeps_distribution_parameters_in_float32(policy, half):
    teacher = WaveNetTeacher(**TINY, dtype=policy)
    params = teacher(_inputs())
    assert params.dtype == "float32"
    assert teacher.blocks[0].compute_dtype == half
    assert teacher.blocks[0].conv.kernel.dtype == "float32"
    dist = teacher.distribution(params)
    assert dist.dtype == "float32"
    assert keras.backend.standardize_dtype(dist.log_prob(_inputs()["audio"]).dtype) == "float32"
    assert keras.backend.standardize_dtype(dist.log_density(_inputs()["audio"]).dtype) == "float32"
    loss = teacher.make_loss()(_inputs()["audio"], params)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert np.isfinite(float(loss))
