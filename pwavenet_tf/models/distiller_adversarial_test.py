"""GAN-augmented distillation at the Distiller level, each test written to fail on a bug.

A tiny random teacher (perturbed so that its output depends on its input), a tiny student
and a small `WaveformDiscriminator`; two runs of `fit` on the same batches from the same
initial weights, one without and one with the discriminator (its adversarial terms
switched on at step START), are compared step by step.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.config import ConfigError, load_config
from pwavenet_tf.losses.power_loss import PowerLoss
from pwavenet_tf.models.distiller import Distiller
from pwavenet_tf.models.waveform_discriminator import WaveformDiscriminator
from pwavenet_tf.training.checkpointing import TrainingCheckpoint, _checkpoint_keys
from pwavenet_tf.training.distill_task import build_discriminator, build_student
from pwavenet_tf.training.loss_balance import term_gradient_norms
from pwavenet_tf.training.teacher_task import build_teacher

LENGTH = 1024  # 4 frames of hop 256
START = 2  # the step from which the adversarial terms count
STEPS = 4


def _batches():
    out = []
    t = np.arange(LENGTH) / 22050.0
    for seed in range(STEPS):
        rng = np.random.default_rng(seed)
        audio = np.stack([0.3 * np.sin(2 * np.pi * (150 + 60 * b + 10 * seed) * t)
                          for b in range(2)]).astype("float32")
        features = rng.normal(-4.0, 1.0, (2, LENGTH // 256, 80)).astype("float32")
        out.append(({"audio": audio, "features": features}, audio))
    return out


def _dataset():
    batches = _batches()
    return tf.data.Dataset.from_generator(
        lambda: iter(batches),
        output_signature=({"audio": tf.TensorSpec((2, LENGTH), "float32"),
                           "features": tf.TensorSpec((2, LENGTH // 256, 80), "float32")},
                          tf.TensorSpec((2, LENGTH), "float32")))


def _weights(variables):
    return [np.array(v) for v in variables]


def _distiller(config, teacher, student_weights, adversarial, start=START):
    student = build_student(config)
    student.set_weights(student_weights)
    kwargs = {}
    if adversarial:
        keras.utils.set_random_seed(5)
        disc = WaveformDiscriminator(num_layers=5, channels=16, name="discriminator")
        disc.build((None, None))
        disc_opt = keras.optimizers.Adam(1e-3)
        disc_opt.build(disc.trainable_variables)
        kwargs = dict(adversarial_weight=2.0, feature_matching_weight=1.0,
                      adversarial_start_step=start, discriminator=disc,
                      discriminator_optimizer=disc_opt)
    d = Distiller(student, teacher, num_kl_samples=4, power_weight=1.0,
                  power_loss=PowerLoss(fft_sizes=(512, 128)), seed=3, **kwargs)
    d.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0))
    d.optimizer.build(student.trainable_variables)
    return d


class _Snapshots(keras.callbacks.Callback):
    """Student (and discriminator) weights and the logged loss after every step."""

    def __init__(self):
        super().__init__()
        self.student, self.disc, self.logs = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.student.append(_weights(self.model.student.trainable_variables))
        if self.model.adversarial:
            self.disc.append(_weights(self.model.discriminator.trainable_variables))
        self.logs.append(dict(logs))


@pytest.fixture(scope="module")
def runs():
    config = load_config("tiny")
    keras.utils.set_random_seed(0)
    teacher = build_teacher(config)
    rng = np.random.default_rng(0)
    for w in teacher.weights:
        w.assign(np.asarray(w) + rng.normal(0.0, 0.1, size=w.shape).astype("float32"))
    initial = build_student(config).get_weights()
    teacher_before = _weights(teacher.weights)
    out = {"teacher": teacher, "teacher_before": teacher_before, "config": config,
           "initial": initial}
    for name, adversarial in (("plain", False), ("gan", True)):
        d = _distiller(config, teacher, initial, adversarial)
        disc_before = _weights(d.discriminator.trainable_variables) if adversarial else None
        snaps = _Snapshots()
        d.fit(_dataset(), epochs=1, steps_per_epoch=STEPS, callbacks=[snaps], verbose=0)
        out[name] = {"distiller": d, "snaps": snaps, "disc_before": disc_before}
    return out


def _max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def test_before_the_start_step_the_update_is_the_non_adversarial_one(runs):
    plain, gan = runs["plain"]["snaps"], runs["gan"]["snaps"]
    for step in range(START):
        diff = _max_diff(plain.student[step], gan.student[step])
        assert diff <= 1e-7, (step, diff)
        # The logged loss has no adversarial part yet (the terms are measured anyway).
        assert gan.logs[step]["loss"] == pytest.approx(plain.logs[step]["loss"], rel=1e-6)
        assert gan.logs[step]["adversarial"] > 0
    # From the start step on the adversarial terms change the student's update.
    after = _max_diff(plain.student[START], gan.student[START])
    print(f"student weights, GAN vs plain run: max |diff| {_max_diff(plain.student[0], gan.student[0])}"
          f" after step 1, {after:.3g} after step {START + 1} (the first adversarial one)")
    assert after > 1e-6, after
    assert gan.logs[START]["loss"] > plain.logs[START]["loss"]


def test_the_teacher_gets_no_update_and_the_discriminator_trains(runs):
    teacher = runs["teacher"]
    for before, w in zip(runs["teacher_before"], teacher.weights):
        np.testing.assert_array_equal(before, np.asarray(w), err_msg=w.path)
    gan = runs["gan"]
    d = gan["distiller"]
    assert int(d.optimizer.iterations.numpy()) == STEPS
    assert int(d.discriminator_optimizer.iterations.numpy()) == STEPS
    # The discriminator is updated from step 0 on, also before START.
    assert _max_diff(gan["disc_before"], gan["snaps"].disc[0]) > 0
    logs = gan["snaps"].logs[-1]
    for key in ("adversarial", "feature_matching", "discriminator_loss"):
        assert np.isfinite(logs[key]) and logs[key] > 0, (key, logs)
    # The discriminator is not among the student optimizer's variables.
    student_ids = {id(v) for v in d.student.trainable_variables}
    assert {id(v) for v in d.optimizer._trainable_variables} == student_ids


def test_the_adversarial_gradient_reaches_the_student_and_never_the_teacher(runs):
    d = runs["gan"]["distiller"]
    batch = _batches()[0][0]
    student_vars = d.student.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        out = d(batch, training=True, noise_seed=11)
        terms = d.adversarial_terms(batch, out)
    for name in ("adversarial", "feature_matching"):
        grads = tape.gradient(terms[name], student_vars)
        norm = float(tf.linalg.global_norm([g for g in grads if g is not None]))
        assert norm > 1e-6, (name, norm)
        teacher_grads = tape.gradient(terms[name], runs["teacher"].weights)
        assert all(g is None for g in teacher_grads), name
    del tape
    norms = term_gradient_norms(d, batch)
    assert norms["adversarial"] > 0 and norms["feature_matching"] > 0
    assert "adversarial" not in term_gradient_norms(runs["plain"]["distiller"], batch)


def test_the_discriminator_loss_falls_in_fit(runs):
    """The discriminator separates the sines from the untrained student's sample."""
    config, teacher = runs["config"], runs["teacher"]
    d = _distiller(config, teacher, runs["initial"], adversarial=True, start=10**6)
    d.discriminator_optimizer.learning_rate.assign(3e-3)
    batches = _batches()
    fixed = batches[0][0]

    def d_loss():
        return float(d.adversarial_terms(fixed, d(fixed, noise_seed=11))["discriminator_loss"])

    initial = d_loss()
    data = tf.data.Dataset.from_tensors(batches[0]).repeat()
    d.fit(data, epochs=1, steps_per_epoch=12, verbose=0)
    final = d_loss()
    print(f"discriminator loss in fit: {initial:.4f} -> {final:.4f}")
    assert final < 0.5 * initial, (initial, final)


def test_without_a_discriminator_nothing_is_added(runs):
    d = runs["plain"]["distiller"]
    assert not d.adversarial and not d.adversarial_trackers
    assert [v.path for v in d.trainable_weights] == [
        v.path for v in d.student.trainable_weights]
    assert "adversarial" not in runs["plain"]["snaps"].logs[-1]


def test_invalid_combinations_are_refused(runs):
    teacher, config = runs["teacher"], runs["config"]
    student = build_student(config)
    disc = WaveformDiscriminator(num_layers=3, channels=4)
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="needs a `discriminator`"):
        Distiller(student, teacher, adversarial_weight=1.0)
    with pytest.raises(ValueError, match="only used with adversarial_weight > 0"):
        Distiller(student, teacher, discriminator=disc, discriminator_optimizer=opt)
    with pytest.raises(ValueError, match="feature_matching_weight > 0 needs"):
        Distiller(student, teacher, feature_matching_weight=1.0)
    with pytest.raises(ValueError, match="adversarial_start_step"):
        Distiller(student, teacher, adversarial_weight=1.0, adversarial_start_step=-1,
                  discriminator=disc, discriminator_optimizer=opt)


@pytest.mark.parametrize("key, value, why", [
    ("adversarial_weight", -1.0, "must be >= 0"),
    ("adversarial_start_step", -5, "must be >= 0"),
    ("feature_matching_weight", 2.0, "needs adversarial_weight > 0"),
    ("discriminator_layers", 1, "must be >= 2"),
    ("discriminator_channels", 0, "must be positive"),
    ("discriminator_learning_rate", 0.0, "must be a finite number > 0"),
])
def test_config_checks(key, value, why):
    with pytest.raises(ConfigError, match=f"distill.{key}`: {why}.*Received: {key}={value}"):
        load_config("tiny").override(distill={key: value})


def test_config_defaults_are_off():
    dc = load_config("tiny").distill
    assert (dc.adversarial_weight, dc.feature_matching_weight, dc.adversarial_start_step) == (
        0.0, 0.0, 0)
    assert (dc.discriminator_layers, dc.discriminator_channels) == (10, 64)
    assert dc.discriminator_learning_rate == 1e-4
    assert build_discriminator(dc) == (None, None)


def test_checkpoint_extras_round_trip_and_old_checkpoints(tmp_path):
    """The discriminator by path and its Adam as a whole; without extras, the keys of
    before; a checkpoint without the extras restores the rest."""
    config = load_config("tiny").override(distill={
        "adversarial_weight": 1.0, "discriminator_layers": 3, "discriminator_channels": 4})
    student = build_student(config)
    opt = keras.optimizers.Adam()
    opt.build(student.trainable_variables)
    disc, disc_opt = build_discriminator(config.distill)
    rng = np.random.default_rng(0)
    for v in list(disc.weights) + list(disc_opt.variables):
        v.assign(rng.uniform(1, 2, v.shape).astype(v.dtype) if v.dtype != "int64"
                 else np.int64(9))
    extras = {"discriminator": disc, "discriminator_optimizer": disc_opt}
    path = TrainingCheckpoint(str(tmp_path / "gan"), model=student, optimizer=opt,
                              extras=extras).save(9)
    assert _checkpoint_keys(path) == {"model_weights", "optimizer", "discriminator",
                                      "discriminator_optimizer", "save_counter",
                                      "_CHECKPOINTABLE_OBJECT_GRAPH"}

    fresh, fresh_opt = build_discriminator(config.distill)
    notes = []
    TrainingCheckpoint(str(tmp_path / "gan"), model=student, optimizer=opt, log=notes.append,
                       extras={"discriminator": fresh,
                               "discriminator_optimizer": fresh_opt}).restore(require=True)
    assert not notes
    for a, b in zip(list(disc.weights) + list(disc_opt.variables),
                    list(fresh.weights) + list(fresh_opt.variables)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    assert int(fresh_opt.iterations.numpy()) == 9

    # Without extras the checkpoint holds what it held before.
    plain = TrainingCheckpoint(str(tmp_path / "plain"), model=student, optimizer=opt).save(3)
    assert _checkpoint_keys(plain) == {"model_weights", "optimizer", "save_counter",
                                       "_CHECKPOINTABLE_OBJECT_GRAPH"}
    # Resuming a run that had no discriminator: the student comes back, the discriminator
    # starts fresh, with a note.
    new, new_opt = build_discriminator(config.distill)
    TrainingCheckpoint(str(tmp_path / "plain"), model=student, optimizer=opt,
                       log=notes.append, extras={"discriminator": new,
                                                 "discriminator_optimizer": new_opt}).restore()
    assert any("has no discriminator" in n for n in notes), notes
    assert int(new_opt.iterations.numpy()) == 0

    # A discriminator of another shape is refused.
    wider, wider_opt = build_discriminator(
        config.override(distill={"discriminator_channels": 8}).distill)
    with pytest.raises(Exception, match="does not match this model"):
        TrainingCheckpoint(str(tmp_path / "gan"), model=student, optimizer=opt,
                           extras={"discriminator": wider,
                                   "discriminator_optimizer": wider_opt}).restore()
    with pytest.raises(ValueError, match="extras"):
        TrainingCheckpoint(str(tmp_path / "x"), model=student, extras={"optimizer": disc})
