import json
import os
import signal

import keras
import numpy as np
import pytest

from pwavenet_tf.training.callbacks import (
    CheckpointCallback,
    GracefulStop,
    LearningRateWarmup,
    MetricsWriter,
    NaNGuard,
    Periodic,
)
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


class _SignalAt(keras.callbacks.Callback):
    """Sends this process `signum` at the end of training step `step`."""

    def __init__(self, step, signum):
        super().__init__()
        self.step, self.signum = step, signum

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_checkpoints_the_step_it_stopped_at(tmp_path, signum):
    model = _model()
    ckpt = TrainingCheckpoint(str(tmp_path), model=model, optimizer=model.optimizer)
    messages = []
    stop = GracefulStop(ckpt, every=4, last=16, log=messages.append)
    before = signal.getsignal(signum)
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model.fit(x, y, epochs=4, batch_size=2, verbose=0,  # 16 steps, epochs of 4
              callbacks=[_SignalAt(6, signum), Periodic(CheckpointCallback(ckpt), 4, 16), stop])
    assert int(model.optimizer.iterations.numpy()) == 6  # the step it arrived in
    assert ckpt.latest.endswith("ckpt-6")
    assert stop.stopped_at == 6
    assert messages == [f"stopped by {signal.Signals(signum).name} at step 6; checkpoint "
                        "saved; the same command resumes from it"]
    assert signal.getsignal(signum) is before  # the previous handler is back


def test_graceful_stop_on_a_periodic_step_saves_it_once(tmp_path):
    model = _model()
    ckpt = TrainingCheckpoint(str(tmp_path), model=model, optimizer=model.optimizer)
    stop = GracefulStop(ckpt, every=4, last=16, log=lambda *_: None)
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=4, batch_size=2, verbose=0,
              callbacks=[_SignalAt(4, signal.SIGTERM),
                         Periodic(CheckpointCallback(ckpt), 4, 16), stop])
    assert stop.stopped_at == 4 and ckpt.latest.endswith("ckpt-4")
    assert sorted(f for f in os.listdir(tmp_path / "checkpoints") if f.endswith(".index")) == [
        "ckpt-4.index"]


def test_a_signal_during_the_epoch_end_stops_at_that_step(tmp_path):
    """The signal lands after the periodic checkpoint of step 4 (no batch end follows)."""

    class SignalAtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGTERM)

    model = _model()
    ckpt = TrainingCheckpoint(str(tmp_path), model=model, optimizer=model.optimizer)
    stop = GracefulStop(ckpt, every=4, last=16, log=lambda *_: None)
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=4, batch_size=2, verbose=0,
              callbacks=[Periodic(CheckpointCallback(ckpt), 4, 16), SignalAtEpochEnd(), stop])
    assert int(model.optimizer.iterations.numpy()) == 4 and stop.stopped_at == 4
    assert ckpt.latest.endswith("ckpt-4")


class _RateLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):  # runs after the warm-up's
        self.rates.append(float(self.model.optimizer.learning_rate.numpy()))


def test_learning_rate_warmup_ramps_by_step_and_resumes_on_the_ramp():
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model, log = _model(), _RateLog()
    model.fit(x, y, batch_size=1, epochs=1, steps_per_epoch=3, verbose=0,
              callbacks=[LearningRateWarmup(model.optimizer, 0.01, 4), log])
    np.testing.assert_allclose(log.rates, [0.0025, 0.005, 0.0075], rtol=1e-6)
    # A new run (a resume) at step 3 continues the ramp, then keeps the full rate.
    log.rates.clear()
    model.fit(x, y, batch_size=1, epochs=1, steps_per_epoch=3, verbose=0,
              callbacks=[LearningRateWarmup(model.optimizer, 0.01, 4), log])
    np.testing.assert_allclose(log.rates, [0.01, 0.01, 0.01], rtol=1e-6)
    with pytest.raises(ValueError, match="`warmup_steps` must be >= 1. Received: warmup_steps=0"):
        LearningRateWarmup(model.optimizer, 0.01, 0)
