import json
import os

import keras
import numpy as np
import pytest

from pwavenet_tf.training.callbacks import CheckpointCallback, MetricsWriter, NaNGuard
from pwavenet_tf.training.checkpointing import TrainingCheckpoint, TrainingDivergedError


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def test_nan_guard_stops_before_a_checkpoint_is_written(tmp_path):
    model = _model()
    ckpt = TrainingCheckpoint(str(tmp_path), model=model, optimizer=model.optimizer)
    x = np.ones((8, 3), "float32")
    y = np.full((8, 1), np.nan, "float32")
    with pytest.raises(TrainingDivergedError, match="`loss` became nan at step 1"):
        model.fit(x, y, epochs=2, batch_size=4, verbose=0,
                  callbacks=[NaNGuard(), CheckpointCallback(ckpt)])
    assert ckpt.latest is None
    assert not os.path.exists(os.path.join(str(tmp_path), "checkpoints", "checkpoint"))


def test_checkpoint_refuses_non_finite_weights(tmp_path):
    model = _model()
    model.layers[0].kernel.assign(np.full((3, 1), np.inf, "float32"))
    with pytest.raises(TrainingDivergedError, match="not finite"):
        TrainingCheckpoint(str(tmp_path), model=model).save(3)


def test_metrics_writer_records_steps_and_figures(tmp_path):
    model = _model()
    path = str(tmp_path / "metrics.json")
    writer = MetricsWriter(path, lambda logs: {"train_loss": logs["loss"]}, extra={"tag": 1})
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=2, batch_size=4, verbose=0,
              callbacks=[writer])
    metrics = json.load(open(path))
    assert metrics["step"] == 4 and metrics["tag"] == 1 and metrics["session_steps"] == 4
    assert np.isfinite(metrics["train_loss"])
