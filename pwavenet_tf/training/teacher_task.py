"""Teacher training task: data, model, `model.fit`, checkpoints, metrics."""

import dataclasses
import math
import os

import keras
import numpy as np
import tensorflow as tf

from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher
from pwavenet_tf.training import callbacks as cb
from pwavenet_tf.training.checkpointing import (
    TrainingCheckpoint,
    removed_on_failure,
    restore_training_state,
    load_trained_model,
    prepare_model_dir,
)
from pwavenet_tf.training.corpus_data import load_corpus_data
from pwavenet_tf.training.optimizers import apply_configured_learning_rate, make_adam
from pwavenet_tf.training.precision import (check_xla_precision, dtype_policy, precision_name,
                                            precision_warning)
from pwavenet_tf.training.strategy import (
    is_multi_worker,
    make_strategy,
    output_dir,
    per_replica_batch,
    weights_fingerprint,
)
from pwavenet_tf.training.schedule import check_steps, plan_epochs

LN2 = math.log(2.0)
METRICS_FILE = "metrics.json"


def build_teacher(config, stats=None, mixed_precision="off"):
    """The teacher of `config`; `mixed_precision`: off, bfloat16 or float16 (or a bool)."""
    dtype = dtype_policy(mixed_precision)
    teacher = WaveNetTeacher.from_pwavenet_config(
        config,
        feature_mean=None if stats is None else stats["mean"],
        feature_std=None if stats is None else stats["std"],
        **({"dtype": dtype} if dtype else {}),
    )
    return teacher


def compile_teacher(teacher, training_config, jit_compile=False):
    """Compiles with Adam (clipnorm, optional EMA); a float16 teacher gets loss scaling."""
    loss = teacher.make_loss()

    def bits_per_sample(y_true, y_pred):
        return loss.call(y_true, y_pred) / LN2

    optimizer = make_adam(training_config)
    # Keras wraps the optimizer in a LossScaleOptimizer for a mixed_float16 model.
    teacher.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile,
                    metrics=[keras.metrics.MeanMetricWrapper(bits_per_sample,
                                                             name="bits_per_sample")])
    teacher.optimizer.build(teacher.trainable_variables)
    return teacher


def load_teacher(model_dir, mixed_precision="off"):
    """Loads a trained teacher from its training directory (config, stats, checkpoint)."""
    return load_trained_model(
        model_dir, "teacher",
        lambda config, stats: build_teacher(config, stats, mixed_precision))


def _published(logs):
    out = {}
    if "loss" in logs:
        out["train_nll_nats"] = logs["loss"]
    if "bits_per_sample" in logs:
        out["train_bits_per_sample"] = logs["bits_per_sample"]
    if "val_loss" in logs:
        out["val_nll_nats"] = logs["val_loss"]
    if "val_bits_per_sample" in logs:
        out["val_bits_per_sample"] = logs["val_bits_per_sample"]
    return out


def enable_determinism(deterministic):
    """`--deterministic`: TensorFlow op determinism (same inputs, same bits, every run)."""
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@dataclasses.dataclass
class TeacherTask:
    """Trains a `WaveNetTeacher` on a corpus folder into `out_dir`.

    `out_dir` receives `config.json` (the resolved config), `feature_stats.json`,
    `checkpoints/` (model, optimizer with its Adam moments and EMA slots, EMA weights and
    the step; the newest is restored on start), `tensorboard/` and `metrics.json`.

    Resume is exact: every batch is a function of (seed, step) (`make_dataset(start_step)`)
    and every checkpoint holds the whole training state, so with `deterministic=True` a
    run stopped and resumed any number of times ends with the weights of an uninterrupted
    run. Validation and the published figures use the EMA weights when `ema_decay` is set.
    """

    config: object
    data_dir: str
    out_dir: str
    seed: int = 0
    mixed_precision: object = "off"
    verbose: int = 1
    log: object = print
    deterministic: bool = False
    strategy: str = "auto"
    jit_compile: bool = False

    def run(self, steps=None, batch_size=None):
        """Trains to `steps` (default: the config's); returns the published metrics.

        Under `multi_worker` only the chief writes to `out_dir` (the others write to a
        temporary copy). A run that fails before its first checkpoint leaves no folder
        that looks trained.
        """
        enable_determinism(self.deterministic)
        strategy = make_strategy(self.strategy)  # before anything touches the runtime
        with output_dir(self.out_dir, strategy) as out, removed_on_failure(out):
            return self._run(strategy, out, steps, batch_size)

    def _run(self, strategy, out_dir, steps, batch_size):
        cfg = self.config
        tc = cfg.teacher_training
        if steps is not None:
            tc = dataclasses.replace(tc, steps=check_steps("steps", steps))
        if batch_size is not None:
            tc = dataclasses.replace(tc, batch_size=check_steps("batch_size", batch_size))
        cfg = dataclasses.replace(cfg, teacher_training=tc)
        per_replica_batch(tc.batch_size, strategy)
        from pwavenet_tf.training.memory_estimate import check_step_memory
        check_step_memory(cfg, "teacher_training", strategy.num_replicas_in_sync,
                          self.mixed_precision)
        precision = precision_name(self.mixed_precision)
        check_xla_precision(precision, self.jit_compile)
        warning = precision_warning(precision)
        if warning:
            self.log(f"warning: {warning}")
        prepare_model_dir(out_dir, cfg, compare_sections=("audio", "teacher"),
                          role="teacher")
        keras.utils.set_random_seed(self.seed)

        data = load_corpus_data(self.data_dir, cfg.audio, tc.num_validation, self.seed,
                                out_dir)
        self.log(f"corpus: {len(data.train)} training / {len(data.examples('valid'))} "
                 "validation clips")
        multi = cfg.audio.num_speakers > 1

        with strategy.scope():
            teacher = build_teacher(cfg, data.stats, precision)
            compile_teacher(teacher, tc, jit_compile=self.jit_compile)
        self.log(f"teacher: {teacher.count_params():,} parameters, receptive field "
                 f"{teacher.receptive_field} samples "
                 f"({1000 * teacher.receptive_field / cfg.audio.sample_rate:.1f} ms); "
                 f"{strategy.num_replicas_in_sync} replica(s) of "
                 f"{tc.batch_size // strategy.num_replicas_in_sync} examples; "
                 f"precision {precision}")
        ckpt = TrainingCheckpoint(out_dir, max_to_keep=tc.keep_checkpoints, model=teacher,
                                  optimizer=teacher.optimizer, log=self.log)
        restored = restore_training_state(ckpt, self.log)
        apply_configured_learning_rate(teacher.optimizer, tc.learning_rate)
        step = int(teacher.optimizer.iterations.numpy())
        if restored:
            self.log(f"resumed from {restored} at step {step}")
        train_ds = data.dataset("train", tc.window_samples, tc.batch_size, self.seed, multi,
                                start_step=step)

        per_epoch, epochs, initial_epoch = plan_epochs(tc.steps, tc.checkpoint_every, step)
        metrics_path = os.path.join(out_dir, METRICS_FILE)
        writer = cb.MetricsWriter(metrics_path, _published, extra={
            "receptive_field": teacher.receptive_field,
            "num_parameters": int(teacher.count_params()),
            "config": cfg.name,
        })

        def periodic(callback):
            return cb.Periodic(callback, tc.checkpoint_every, tc.steps)

        callbacks = [cb.NaNGuard()]
        if data.valid:
            valid_ds = data.dataset("valid", tc.window_samples, tc.batch_size, self.seed + 1,
                                    multi, shuffle=False)
            callbacks.append(periodic(cb.EMAValidation(valid_ds, max(1, min(8, len(data.valid))))))
        callbacks += [
            periodic(cb.CheckpointCallback(ckpt)),
            periodic(writer),
            keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
            cb.Periodic(cb.TensorBoardMedia(os.path.join(out_dir, "tensorboard", "media"),
                                            self._media_fn(teacher, data),
                                            cfg.audio.sample_rate),
                        tc.log_audio_every or tc.steps, tc.steps),
        ]
        if not is_multi_worker(strategy):
            callbacks.append(cb.GracefulStop(ckpt, tc.checkpoint_every, tc.steps, self.log))
        if initial_epoch >= epochs:
            self.log(f"already trained for {step} >= {tc.steps} steps; nothing to do")
        else:
            # Every periodic checkpoint (the last step's included) holds the raw weights,
            # the optimizer state and the EMA weights; fit swaps the EMA weights into the
            # in-memory model at its end, which is what `self.teacher` then holds.
            teacher.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=per_epoch, callbacks=callbacks, verbose=self.verbose)
        if strategy.num_replicas_in_sync > 1:
            self.log(f"weights fingerprint: {weights_fingerprint(teacher)}")
        self.teacher = teacher
        return writer.latest or self._read_metrics(metrics_path)

    @staticmethod
    def _read_metrics(path):
        import json

        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return {}

    def _media_fn(self, teacher, data):
        examples = data.examples("valid") or data.examples("train")

        def make():
            _, audio, features = examples[0]
            n = min(len(features), 64)
            audio = audio[None, : n * teacher.hop_length]
            inputs = {"audio": audio, "features": features[None, :n]}
            if teacher.multi_speaker:
                inputs["speaker_id"] = np.array([examples[0][0].speaker_id], "int32")
            mean = teacher.distribution(teacher(inputs)).mean()
            return {"real_audio": ("audio", audio),
                    "teacher_forced_mean": ("audio", np.asarray(mean)),
                    "log_mel": ("image", features[None, :n])}

        return make

