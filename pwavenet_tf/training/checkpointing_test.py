import numpy as np
import pytest

from pwavenet_tf.config import load_config
from pwavenet_tf.training.checkpointing import CheckpointError, TrainingCheckpoint
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
