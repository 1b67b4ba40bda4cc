"""Unit tests of the distillation step, each written to fail on a known bug.

A tiny random teacher (its weights perturbed so that its output depends on its input) and a
tiny student; every check compares numbers against an independent reference.
"""

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.config import load_config
from pwavenet_tf.losses.kl_divergence import kl_terms
from pwavenet_tf.losses.power_loss import PowerLoss
from pwavenet_tf.models.distiller import Distiller
from pwavenet_tf.training.distill_task import build_student
from pwavenet_tf.training.teacher_task import build_teacher

LENGTH = 1024  # 4 frames of hop 256


def _perturbed_pair(config):
    """`(teacher, student)` of `config`, seeded, every teacher weight perturbed."""
    tf.keras.utils.set_random_seed(0)
    teacher = build_teacher(config)
    student = build_student(config)
    rng = np.random.default_rng(0)
    # Zero-initialised output layers would make p_T independent of x: perturb every weight.
    for w in teacher.weights:
        w.assign(np.asarray(w) + rng.normal(0.0, 0.1, size=w.shape).astype("float32"))
    return teacher, student


@pytest.fixture(scope="module")
def pair():
    config = load_config("tiny")
    return (config, *_perturbed_pair(config))


def _batch(seed=0, batch=2):
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / 22050.0
    audio = np.stack([0.3 * np.sin(2 * np.pi * (180 + 70 * b) * t) for b in range(batch)])
    return {"audio": tf.constant(audio.astype("float32")),
            "features": tf.constant(rng.normal(-4.0, 1.0, (batch, LENGTH // 256, 80))
                                    .astype("float32"))}


def _student_out(x, seed=1):
    rng = np.random.default_rng(seed)
    shape = x.shape
    return {"audio": x,
            "mu_tot": tf.constant(rng.normal(0.0, 0.05, shape).astype("float32")),
            "log_s_tot": tf.constant(np.full(shape, -3.0, "float32"))}


def test_kl_gradient_wrt_the_students_sample_matches_finite_differences(pair):
    """Fails for a sample that reaches the teacher through a stop-gradient, or rounded."""
    _, teacher, student = pair
    d = Distiller(student, teacher, num_kl_samples=4)
    batch = _batch()
    rng = np.random.default_rng(2)
    x0 = rng.normal(0.0, 0.1, (2, LENGTH)).astype("float64")

    def kl(x):
        out = _student_out(tf.constant(x.astype("float32")))
        return float(d.loss_terms(batch, out, kl_seed=5)["kl"])

    x = tf.Variable(x0.astype("float32"))
    with tf.GradientTape() as tape:
        value = d.loss_terms(batch, _student_out(x), kl_seed=5)["kl"]
    grad = tape.gradient(value, x).numpy().astype("float64")
    norm = np.linalg.norm(grad)
    assert norm > 1e-4, norm  # zero for a stop-gradiented or rounded sample
    # Along the gradient (0.1 per element on average) the directional derivative is large
    # enough for float32 central differences to resolve it to ~0.1%.
    v = 0.1 * np.sqrt(grad.size) * grad / norm
    h = 1e-3
    numeric = (kl(x0 + h * v) - kl(x0 - h * v)) / (2 * h)
    np.testing.assert_allclose(float(np.sum(grad * v)), numeric, rtol=1e-2)


def test_the_teacher_scores_the_students_own_sample(pair):
    """The KL equals the reference on x and differs from the one on the real audio."""
    _, teacher, student = pair
    d = Distiller(student, teacher, num_kl_samples=4)
    batch = _batch()
    x = tf.constant(np.random.default_rng(3).normal(0.0, 0.1, (2, LENGTH)).astype("float32"))
    out = _student_out(x)
    noise = d._kl_noise(out, kl_seed=5, training=False)
    cond = teacher.upsample_conditioning(batch["features"])

    def reference(audio):
        terms = kl_terms(teacher, {**out, "audio": audio}, cond, None, 4, noise=noise)
        return float(np.mean(terms["kl"]))

    got = float(d.loss_terms(batch, out, kl_seed=5)["kl"])
    assert got == pytest.approx(reference(x), rel=1e-6)
    assert abs(got - reference(batch["audio"])) > 1e-3


def test_contrastive_term_uses_another_utterances_conditioning(pair):
    """Fails when the batch roll is dropped (then kl_mismatched == kl)."""
    _, teacher, student = pair
    d = Distiller(student, teacher, num_kl_samples=4, contrastive_weight=1.0,
                  contrastive_gamma=0.3)
    batch = _batch(batch=3)
    x = tf.constant(np.random.default_rng(4).normal(0.0, 0.1, (3, LENGTH)).astype("float32"))
    out = _student_out(x)
    terms = d.loss_terms(batch, out, kl_seed=5)
    noise = d._kl_noise(out, kl_seed=5, training=False)
    rolled = tf.roll(teacher.upsample_conditioning(batch["features"]), 1, axis=0)
    want = float(np.mean(kl_terms(teacher, out, rolled, None, 4, noise=noise)["kl"]))
    assert float(terms["kl_mismatched"]) == pytest.approx(want, rel=1e-6)
    # the matched terms equal a pass of their own
    matched = kl_terms(teacher, out, teacher.upsample_conditioning(batch["features"]), None, 4,
                       noise=noise)
    for k in ("kl", "cross_entropy", "entropy"):
        assert float(terms[k]) == pytest.approx(float(np.mean(matched[k])), rel=1e-6)
    assert abs(float(terms["kl_mismatched"]) - float(terms["kl"])) > 1e-3
    np.testing.assert_allclose(float(terms["contrastive"]),
                               float(terms["kl"]) - 0.3 * float(terms["kl_mismatched"]),
                               rtol=1e-6)


def test_a_mu_law_teacher_is_refused(pair):
    config, _, student = pair
    mu_law = build_teacher(config.override(teacher={"output_distribution": "mu_law"}))
    with pytest.raises(ValueError, match="continuous output density.*mu_law"):
        Distiller(student, mu_law)


def _train_step(d, batch, step):
    d.optimizer.iterations.assign(step)
    return d.train_step((batch, batch["audio"]))


def test_training_draws_are_keyed_to_the_step_and_the_example(pair):
    """Same step -> same loss; other step -> other draws; example i's noise is its own."""
    _, teacher, student = pair
    d = Distiller(student, teacher, num_kl_samples=4, seed=11)
    d.compile(optimizer="sgd")
    batch = _batch()
    d.optimizer.iterations.assign(7)
    a = d(batch, training=True)["audio"].numpy()
    b = d(batch, training=True)["audio"].numpy()
    np.testing.assert_array_equal(a, b)
    d.optimizer.iterations.assign(8)
    c = d(batch, training=True)["audio"].numpy()
    assert np.abs(a - c).max() > 1e-3
    # Examples draw different noise, and example 0's noise does not depend on the batch
    # size (what lets replicas split a batch without changing any example's draws).
    d.optimizer.iterations.assign(7)
    one = d({"audio": batch["audio"][:1], "features": batch["features"][:1]},
            training=True)["audio"].numpy()
    np.testing.assert_allclose(one[0], a[0], atol=1e-6)
    same_features = {"audio": batch["audio"], "features": tf.repeat(batch["features"][:1], 2, 0)}
    pair_out = d(same_features, training=True)["audio"].numpy()
    assert np.abs(pair_out[0] - pair_out[1]).max() > 1e-3


def test_a_power_loss_term_pulls_the_gradient(pair):
    """With the power term on, the total differs by exactly weight * power."""
    _, teacher, student = pair
    d0 = Distiller(student, teacher, num_kl_samples=4)
    d1 = Distiller(student, teacher, num_kl_samples=4, power_weight=2.5,
                   power_loss=PowerLoss(fft_sizes=(256, 64)))
    batch = _batch()
    out = d0(batch, noise_seed=3)
    t0, t1 = d0.loss_terms(batch, out, kl_seed=4), d1.loss_terms(batch, out, kl_seed=4)
    assert float(t1["power"]) > 0
    np.testing.assert_allclose(float(d1.total_loss(t1)),
                               float(d0.total_loss(t0)) + 2.5 * float(t1["power"]), rtol=1e-6)


def test_the_long_term_spectrum_term_adds_its_weight_and_pulls_a_dc_offset_down(pair):
    """`ltas` is a separate weighted term, and its gradient w.r.t. a DC offset of the
    student's sample is positive (lowering the offset lowers the loss), large enough to
    matter where the paper's linear power loss barely sees the offset."""
    _, teacher, student = pair
    ltas = PowerLoss(fft_sizes=(512,), log_floor=1e-9)
    d0 = Distiller(student, teacher, num_kl_samples=4)
    d1 = Distiller(student, teacher, num_kl_samples=4, ltas_weight=3.0, ltas_loss=ltas)
    assert "ltas" in d1._active_terms() and "ltas" not in d0._active_terms()
    batch = _batch()
    out = d0(batch, noise_seed=3)
    t0, t1 = d0.loss_terms(batch, out, kl_seed=4), d1.loss_terms(batch, out, kl_seed=4)
    np.testing.assert_allclose(float(d1.total_loss(t1)),
                               float(d0.total_loss(t0)) + 3.0 * float(t1["ltas"]), rtol=1e-6)
    real = batch["audio"]
    offset = tf.Variable(0.01)
    with tf.GradientTape(persistent=True) as tape:
        x = real + offset
        log_term = ltas(x, real)
        linear_term = PowerLoss(fft_sizes=(512,))(x, real)
    g_log, g_lin = float(tape.gradient(log_term, offset)), float(tape.gradient(linear_term, offset))
    assert g_log > 0 and g_lin >= 0
    assert g_log > 10 * g_lin  # measured: 16.9 vs 0.46
    with pytest.raises(ValueError, match="ltas_weight > 0 needs"):
        Distiller(student, teacher, ltas_weight=1.0)


@pytest.mark.parametrize("speakers", [1, 2])
def test_recompute_teacher_gives_the_same_loss_and_gradients(pair, speakers):
    """`recompute_teacher` (tf.recompute_grad around the teacher's passes) changes memory,
    not numbers: the loss and the student's gradients (through the matched and the
    contrastive pass) equal those without it, eagerly and in a tf.function."""
    config = pair[0]
    if speakers > 1:
        config = config.override(audio={"num_speakers": speakers})
    teacher, student = _perturbed_pair(config)
    batch = _batch()
    if speakers > 1:
        batch["speaker_id"] = tf.constant([0, 1], tf.int32)
    kwargs = dict(num_kl_samples=4, contrastive_weight=0.3, power_weight=1.0,
                  power_loss=PowerLoss(fft_sizes=(256, 64)))
    plain = Distiller(student, teacher, **kwargs)
    recomputed = Distiller(student, teacher, recompute_teacher=True, **kwargs)

    def loss_and_grads(d):
        with tf.GradientTape() as tape:
            out = d(batch, noise_seed=3)
            loss = d.total_loss(d.loss_terms(batch, out, kl_seed=4))
        return loss, tape.gradient(loss, student.trainable_variables)

    for run in (loss_and_grads, tf.function(loss_and_grads)):
        (l0, g0), (l1, g1) = run(plain), run(recomputed)
        np.testing.assert_allclose(float(l1), float(l0), rtol=1e-6)
        assert all(g is not None for g in g1)
        for a, b in zip(g0, g1):
            np.testing.assert_allclose(tf.convert_to_tensor(b).numpy(),
                                       tf.convert_to_tensor(a).numpy(), atol=1e-5, rtol=1e-5)
