"""Keras callbacks shared by teacher training and distillation."""

import contextlib
import math
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from pwavenet_tf.atomic_files import write_json
from pwavenet_tf.training.checkpointing import TrainingDivergedError


class NaNGuard(keras.callbacks.Callback):
    """Stops training with a clear error as soon as a logged loss is NaN or Inf.

    Runs before the checkpoint callback, so a diverged model is never saved.
    """

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if "loss" in key and value is not None and not math.isfinite(float(value)):
                step = int(self.model.optimizer.iterations.numpy())
                raise TrainingDivergedError(
                    f"`{key}` became {value} at step {step}. Training stopped before writing a "
                    "checkpoint; lower the learning rate or check the data, then resume from the "
                    "last checkpoint."
                )


class CheckpointCallback(keras.callbacks.Callback):
    """Saves a `TrainingCheckpoint` at the end of every epoch (= every N steps)."""

    def __init__(self, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoint.save(int(self.model.optimizer.iterations.numpy()))


class GracefulStop(keras.callbacks.Callback):
    """SIGTERM or SIGINT (a scheduler's preemption, Ctrl-C, the end of a session): finish
    the current step, checkpoint it and stop, instead of losing up to `every` steps.

    The handlers are installed for the duration of `fit` (main thread only) and the
    previous ones restored after it. The step that stopped is saved in `on_epoch_end`
    unless it is a multiple of `every` (or `last`), which the periodic checkpoint saves.
    A run resumed from such a step is as exact as one resumed from a periodic checkpoint
    (noise and data are keyed to the step). Not for multi-worker runs: a checkpoint is a
    collective there, and the workers would be stopped at different steps.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, checkpoint, every, last, log):
        super().__init__()
        self.checkpoint = checkpoint
        self.every = every
        self.last = last
        self.log = log
        self.requested = None
        self.stopped_at = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = signal.Signals(signum).name

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def on_train_end(self, logs=None):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        if self.requested is not None:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.requested is None or self.stopped_at is not None:
            return
        # A signal that arrives during the epoch-end callbacks stops here too (fit checks
        # stop_training after on_epoch_end), at a step the periodic checkpoint has saved.
        self.model.stop_training = True
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every != 0 and step < self.last:
            self.checkpoint.save(step)
        self.stopped_at = step
        self.log(f"stopped by {self.requested} at step {step}; checkpoint saved; the same "
                 "command resumes from it")


class MetricsWriter(keras.callbacks.Callback):
    """Writes `metrics.json` after every epoch: the step, every logged figure, and timing.

    `transform(logs) -> dict` maps Keras logs to the published names.
    """

    def __init__(self, path, transform, extra=None):
        super().__init__()
        self.path = path
        self.transform = transform
        self.extra = dict(extra or {})
        self.start = time.time()
        self.start_step = None
        self.latest = {}

    def on_train_begin(self, logs=None):
        self.start_step = int(self.model.optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        elapsed = time.time() - self.start
        metrics = {"step": step}
        metrics.update(self.transform({k: float(v) for k, v in (logs or {}).items()}))
        metrics.update(self.extra)
        metrics["session_steps"] = step - self.start_step
        metrics["session_seconds"] = round(elapsed, 2)
        metrics["steps_per_second"] = round((step - self.start_step) / max(elapsed, 1e-9), 4)
        self.latest = metrics
        write_json(self.path, metrics)


class TensorBoardMedia(keras.callbacks.Callback):
    """Logs audio clips and mel-spectrogram images to TensorBoard every `every` epochs.

    `make_media() -> dict(name -> (kind, tensor))` where kind is "audio" ([B, T] in
    [-1, 1]) or "image" ([B, frames, bins], any range; normalised per image).
    """

    def __init__(self, log_dir, make_media, sample_rate, every=1):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.make_media = make_media
        self.sample_rate = sample_rate
        self.every = max(1, every)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        step = int(self.model.optimizer.iterations.numpy())
        with self.writer.as_default():
            for name, (kind, value) in self.make_media().items():
                value = np.asarray(value, dtype="float32")
                if kind == "audio":
                    tf.summary.audio(name, value[..., None], self.sample_rate, step=step,
                                     max_outputs=2)
                else:
                    img = np.flip(np.transpose(value, (0, 2, 1)), axis=1)
                    lo = img.min(axis=(1, 2), keepdims=True)
                    hi = img.max(axis=(1, 2), keepdims=True)
                    img = (img - lo) / np.maximum(hi - lo, 1e-6)
                    tf.summary.image(name, img[..., None], step=step, max_outputs=2)
        self.writer.flush()


@contextlib.contextmanager
def ema_weights_swapped(model):
    """Within the block the model's trainable weights are its optimizer's EMA (Polyak)
    averages; the raw weights come back afterwards. A no-op without EMA."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or not averages:
        yield
        return
    variables = list(optimizer._trainable_variables)
    raw = [v.numpy() for v in variables]
    for v, a in zip(variables, averages):
        v.assign(a)
    try:
        yield
    finally:
        for v, r in zip(variables, raw):
            v.assign(r)


class EMAValidation(keras.callbacks.Callback):
    """Adds `val_<metric>` to the epoch logs, measured with the EMA weights.

    The weights used downstream (generation, distillation, export) are the EMA weights,
    so validation measures those, on the same batches every time (a fresh iterator over
    `dataset` per evaluation). Place it before the callbacks that read `val_*`.
    """

    def __init__(self, dataset, steps):
        super().__init__()
        self.dataset = dataset
        self.steps = steps

    def on_epoch_end(self, epoch, logs=None):
        with ema_weights_swapped(self.model):
            results = self.model.evaluate(self.dataset, steps=self.steps, verbose=0,
                                          return_dict=True)
        if logs is not None:
            logs.update({f"val_{k}": float(v) for k, v in results.items()})


class LearningRateWarmup(keras.callbacks.Callback):
    """Linear learning-rate warm-up keyed to the optimizer's step: before the batch of step
    t (0-based) the rate is `learning_rate * (t + 1) / warmup_steps` while t < warmup_steps,
    then `learning_rate`. A function of the step only, so a run resumed mid-warm-up
    continues the same ramp."""

    def __init__(self, optimizer, learning_rate, warmup_steps):
        super().__init__()
        if warmup_steps < 1:
            raise ValueError(f"`warmup_steps` must be >= 1. Received: warmup_steps={warmup_steps}")
        self.optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self._done = False

    def rate(self, step):
        return self.learning_rate * min(1.0, (step + 1) / self.warmup_steps)

    def on_train_batch_begin(self, batch, logs=None):
        if self._done:
            return
        step = int(self.optimizer.iterations.numpy())
        self.optimizer.learning_rate.assign(self.rate(step))
        self._done = step + 1 >= self.warmup_steps


class Periodic(keras.callbacks.Callback):
    """Runs `callback`'s `on_epoch_end` only at multiples of `every` steps and at `last`.

    Epochs are as short as exact step counts need (`schedule.plan_epochs`); checkpoints,
    validation and metrics still happen every `checkpoint_every` steps and at the end.
    """

    def __init__(self, callback, every, last):
        super().__init__()
        self.callback = callback
        self.every = every
        self.last = last

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(logs)

    def on_train_batch_end(self, batch, logs=None):
        self.callback.on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0 or step >= self.last:
            self.callback.on_epoch_end(epoch, logs)
