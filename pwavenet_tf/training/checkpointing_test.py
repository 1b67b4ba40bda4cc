import os

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.config import load_config
from pwavenet_tf.training.checkpointing import (
    CheckpointError,
    TrainingCheckpoint,
    model_variables_by_path,
)
from pwavenet_tf.training.distill_task import build_student
from pwavenet_tf.training.teacher_task import build_teacher, compile_teacher


def test_every_weight_round_trips_including_layers_in_lists(tmp_path):
    """Blocks and flows live in Python lists; all their weights must be saved and loaded."""
    config = load_config("tiny")
    for build in (build_teacher, build_student):
        model = build(config)
        ckpt = TrainingCheckpoint(str(tmp_path / build.__name__), model=model)
        ckpt.save(7)
        fresh = build(config)  # new random initialisation
        assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(),
                                                            fresh.get_weights()))
        TrainingCheckpoint(str(tmp_path / build.__name__), model=fresh).restore(require=True)
        for a, b in zip(model.weights, fresh.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_optimizer_state_and_step_round_trip(tmp_path):
    config = load_config("tiny")
    teacher = compile_teacher(build_teacher(config), config.teacher_training)
    teacher.optimizer.iterations.assign(42)
    TrainingCheckpoint(str(tmp_path), model=teacher, optimizer=teacher.optimizer).save(42)
    other = compile_teacher(build_teacher(config), config.teacher_training)
    TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer).restore()
    assert int(other.optimizer.iterations.numpy()) == 42


def test_a_model_of_another_shape_is_refused(tmp_path):
    config = load_config("tiny")
    TrainingCheckpoint(str(tmp_path), model=build_teacher(config)).save(1)
    bigger = build_teacher(config.override(teacher={"residual_channels": 8}))
    with pytest.raises(CheckpointError, match="does not match this model"):
        TrainingCheckpoint(str(tmp_path), model=bigger).restore()
    with pytest.raises(CheckpointError, match="No checkpoint found"):
        TrainingCheckpoint(str(tmp_path / "empty"), model=bigger).restore(require=True)


def test_adam_moments_and_ema_round_trip_and_inference_loads_the_ema(tmp_path):
    config = load_config("tiny")  # teacher_training.ema_decay = 0.98
    teacher = compile_teacher(build_teacher(config), config.teacher_training)
    opt = teacher.optimizer
    rng = np.random.default_rng(0)
    for v in opt.variables:  # moments, EMA slots, iterations: all non-default values
        v.assign(rng.uniform(1, 2, size=v.shape).astype(v.dtype) if v.dtype != "int64"
                 else np.int64(17))
    averages = [np.asarray(a) for a in opt._model_variables_moving_average]
    assert averages and len(averages) == len(teacher.trainable_weights)
    TrainingCheckpoint(str(tmp_path), model=teacher, optimizer=opt).save(17)

    other = compile_teacher(build_teacher(config), config.teacher_training)
    TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer).restore()
    assert len(other.optimizer.variables) == len(opt.variables)
    for a, b in zip(opt.variables, other.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    for a, b in zip(teacher.weights, other.weights):  # training resumes from the raw weights
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)

    # A loader without an optimizer (generation, distillation, export) gets the EMA weights.
    infer = build_teacher(config)
    TrainingCheckpoint(str(tmp_path), model=infer).restore(require=True)
    for w, avg in zip(infer.trainable_weights, averages):
        np.testing.assert_array_equal(np.asarray(w), avg, err_msg=w.path)
    raw = build_teacher(config)
    TrainingCheckpoint(str(tmp_path), model=raw).restore(require=True, use_ema=False)
    for a, b in zip(teacher.weights, raw.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_a_checkpoint_without_ema_weights_still_resumes(tmp_path):
    """Checkpoints of earlier versions have no `ema_weights`; the optimizer's slots suffice."""
    config = load_config("tiny")
    teacher = compile_teacher(build_teacher(config), config.teacher_training)
    for v in teacher.optimizer._model_variables_moving_average:
        v.assign(np.full(v.shape, 0.25, "float32"))
    old = tf.train.Checkpoint(model_weights=tf.train.Checkpoint(**model_variables_by_path(teacher)),
                              optimizer=teacher.optimizer)
    tf.train.CheckpointManager(old, str(tmp_path / "checkpoints"), 2).save(checkpoint_number=5)
    other = compile_teacher(build_teacher(config), config.teacher_training)
    TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer).restore()
    for v in other.optimizer._model_variables_moving_average:
        np.testing.assert_array_equal(np.asarray(v), 0.25)


@pytest.mark.parametrize("broken", ["data", "index"])
def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, broken):
    config = load_config("tiny")
    teacher = compile_teacher(build_teacher(config), config.teacher_training)
    ckpt = TrainingCheckpoint(str(tmp_path), max_to_keep=3, model=teacher,
                              optimizer=teacher.optimizer)
    teacher.optimizer.iterations.assign(10)
    ckpt.save(10)
    first = [np.asarray(w) for w in teacher.weights]
    for w in teacher.weights:
        w.assign(np.asarray(w) + 1.0)
    teacher.optimizer.iterations.assign(20)
    ckpt.save(20)
    suffix = ".data-00000-of-00001" if broken == "data" else ".index"
    newest = tmp_path / "checkpoints" / f"ckpt-20{suffix}"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])  # a kill mid-write

    other = compile_teacher(build_teacher(config), config.teacher_training)
    notes = []
    path = TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer,
                              log=notes.append).restore()
    assert path.endswith("ckpt-10")
    assert int(other.optimizer.iterations.numpy()) == 10
    for a, w in zip(first, other.weights):
        np.testing.assert_array_equal(a, np.asarray(w))
    assert len(notes) == 1 and "ckpt-20 is unreadable" in notes[0] and "older" in notes[0]

    (tmp_path / "checkpoints" / "ckpt-10.index").write_bytes(b"")  # now none loads
    with pytest.raises(CheckpointError, match="No checkpoint in .* can be read: ckpt-20"):
        TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer).restore()


def test_leftovers_of_an_interrupted_save_are_removed(tmp_path):
    from pwavenet_tf.training.checkpointing import restore_training_state

    config = load_config("tiny")
    model = build_teacher(config)
    ckpt = TrainingCheckpoint(str(tmp_path), model=model)
    ckpt.save(5)
    folder = tmp_path / "checkpoints"
    (folder / "ckpt-10_temp").mkdir()
    (folder / "ckpt-10_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    (folder / "ckpt-15.data-00000-of-00001").write_bytes(b"orphan")
    notes = []
    assert restore_training_state(TrainingCheckpoint(str(tmp_path), model=build_teacher(config)),
                                  notes.append).endswith("ckpt-5")
    assert sorted(os.listdir(folder)) == ["checkpoint", "ckpt-5.data-00000-of-00001",
                                          "ckpt-5.index"]
    assert "removed 2 partial checkpoint file(s)" in notes[0]


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    from pwavenet_tf.training.checkpointing import removed_on_failure

    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="boom"):
        with removed_on_failure(str(fresh)):
            fresh.mkdir()
            (fresh / "config.json").write_text("{}")
            (fresh / "pwavenet_model.json").write_text("{}")
            raise RuntimeError("boom")
    assert not fresh.exists()

    mine = tmp_path / "mine"  # an existing folder: only what the run wrote goes
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt):
        with removed_on_failure(str(mine)):
            (mine / "config.json").write_text("{}")
            (mine / "tensorboard").mkdir()
            raise KeyboardInterrupt
    assert sorted(os.listdir(mine)) == ["notes.txt"]

    trained = tmp_path / "trained"  # with a checkpoint, a failure removes nothing
    TrainingCheckpoint(str(trained), model=build_teacher(load_config("tiny"))).save(1)
    (trained / "config.json").write_text("{}")
    with pytest.raises(ValueError):
        with removed_on_failure(str(trained)):
            (trained / "metrics.json").write_text("{}")
            raise ValueError("late failure")
    assert (trained / "config.json").exists() and (trained / "metrics.json").exists()


def test_a_resumed_run_trains_with_the_configs_learning_rate(tmp_path):
    from pwavenet_tf.training.optimizers import apply_configured_learning_rate

    config = load_config("tiny")
    teacher = compile_teacher(build_teacher(config), config.teacher_training)
    TrainingCheckpoint(str(tmp_path), model=teacher, optimizer=teacher.optimizer).save(3)
    lower = config.override(teacher_training={"learning_rate": 1e-4})
    other = compile_teacher(build_teacher(lower), lower.teacher_training)
    TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer).restore()
    # The checkpoint carries the old rate ...
    assert float(other.optimizer.learning_rate.numpy()) == pytest.approx(0.005)
    apply_configured_learning_rate(other.optimizer, lower.teacher_training.learning_rate)
    assert float(other.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)


def test_a_truncated_config_json_names_the_file(tmp_path):
    from pwavenet_tf.training.checkpointing import read_model_dir_config

    (tmp_path / "config.json").write_text('{"audio": {"sample_rate": 22')
    with pytest.raises(CheckpointError, match=r"config.json is not valid JSON .*truncated"):
        read_model_dir_config(str(tmp_path))


def test_a_state_file_without_timestamps_still_lists_its_checkpoints(tmp_path, monkeypatch):
    """The preset's training folders carry a hand-made `checkpoint` file (no timestamps)."""
    config = load_config("tiny")
    model = build_teacher(config)
    TrainingCheckpoint(str(tmp_path), model=model).save(7)
    (tmp_path / "checkpoints" / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-7"\nall_model_checkpoint_paths: "ckpt-7"\n')
    path = TrainingCheckpoint(str(tmp_path), model=build_teacher(config)).restore(require=True)
    assert path.endswith("ckpt-7")
    monkeypatch.chdir(tmp_path)  # a relative --out, as on the command line
    path = TrainingCheckpoint(".", model=build_teacher(config)).restore(require=True)
    assert os.path.normpath(path) == os.path.join("checkpoints", "ckpt-7")


@pytest.mark.parametrize("saved_ema,resumed_ema", [(None, 0.9), (0.9, None)])
def test_ema_turned_on_or_off_since_the_checkpoint_resumes_the_optimizer(
        tmp_path, saved_ema, resumed_ema):
    """Keras saves the optimizer's variables as one list whose layout depends on `use_ema`:
    without this a resumed run that turns `ema_decay` on failed with "incompatible tensor
    with shape (16, 256) ... adam/block_0_dilated_conv_kernel_average"."""
    config = load_config("tiny")

    def compiled(ema):
        tc = config.override(teacher_training={"ema_decay": ema}).teacher_training
        return compile_teacher(build_teacher(config), tc)

    teacher = compiled(saved_ema)
    opt = teacher.optimizer
    rng = np.random.default_rng(1)
    for v in opt.variables:
        v.assign(rng.uniform(1, 2, size=v.shape).astype(v.dtype) if v.dtype != "int64"
                 else np.int64(23))
    TrainingCheckpoint(str(tmp_path), model=teacher, optimizer=opt).save(23)
    notes = []
    other = compiled(resumed_ema)
    assert TrainingCheckpoint(str(tmp_path), model=other, optimizer=other.optimizer,
                              log=notes.append).restore(require=True)
    mine = other.optimizer
    assert int(mine.iterations.numpy()) == 23
    assert float(mine.learning_rate.numpy()) == pytest.approx(float(opt.learning_rate.numpy()))
    for a, b in zip(mine._momentums + mine._velocities, opt._momentums + opt._velocities):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(other.weights, teacher.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert len(notes) == 1 and "Polyak" in notes[0]
    if resumed_ema:
        # The averages start at the restored weights, not at Keras' zeros.
        for w, average in zip(mine._trainable_variables, mine._model_variables_moving_average):
            np.testing.assert_array_equal(np.asarray(average), np.asarray(w))
        assert "starts from its weights at step 23" in notes[0]
        # ... and the next save/restore round-trips them as usual.
        TrainingCheckpoint(str(tmp_path / "again"), model=other, optimizer=mine).save(24)
        third = compiled(resumed_ema)
        TrainingCheckpoint(str(tmp_path / "again"), model=third,
                           optimizer=third.optimizer).restore(require=True)
        for a, b in zip(third.optimizer._model_variables_moving_average,
                        mine._model_variables_moving_average):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        assert "dropped" in notes[0]
