"""Distillation task: a trained teacher -> an IAF student, under `model.fit`."""

import dataclasses
import json
import math
import os
import shutil

import keras
import numpy as np

from pwavenet_tf.config import check_distillable
from pwavenet_tf.losses.power_loss import PowerLoss
from pwavenet_tf.losses.spectral_loss import MultiResolutionSTFTLoss
from pwavenet_tf.models.distiller import Distiller
from pwavenet_tf.models.iaf_student import IAFStudent
from pwavenet_tf.models.waveform_discriminator import WaveformDiscriminator
from pwavenet_tf.training import callbacks as cb
from pwavenet_tf.training.checkpointing import (
    STATS_FILE,
    CheckpointError,
    TrainingCheckpoint,
    restore_training_state,
    load_trained_model,
    model_dir_role,
    prepare_model_dir,
    read_model_dir_config,
    removed_on_failure,
    read_model_dir_info,
    write_json,
)
from pwavenet_tf.training.corpus_data import load_corpus_data
from pwavenet_tf.training.loss_balance import terms_with_gradient_norms
from pwavenet_tf.training.optimizers import (
    ReplicaConsistentAdam,
    apply_configured_learning_rate,
    make_adam,
)
from pwavenet_tf.training.precision import (check_xla_precision, dtype_policy, precision_name,
                                            precision_warning)
from pwavenet_tf.training.schedule import check_steps, plan_epochs
from pwavenet_tf.training.strategy import (
    is_multi_worker,
    make_strategy,
    output_dir,
    per_replica_batch,
    weights_fingerprint,
)
from pwavenet_tf.training.teacher_task import METRICS_FILE, enable_determinism, load_teacher

CLASSIFIER_FILE = "phone_classifier.keras"


def build_student(config, stats=None, mixed_precision="off"):
    """The student of `config`; `mixed_precision`: off, bfloat16 or float16 (or a bool)."""
    dtype = dtype_policy(mixed_precision)
    return IAFStudent.from_pwavenet_config(
        config,
        feature_mean=None if stats is None else stats["mean"],
        feature_std=None if stats is None else stats["std"],
        **({"dtype": dtype} if dtype else {}),
    )


def build_discriminator(distill_config):
    """`(WaveformDiscriminator, its built Adam)` for `adversarial_weight > 0`, else
    `(None, None)`. Built here so that a checkpoint can be restored into both."""
    dc = distill_config
    if not dc.adversarial_weight > 0:
        return None, None
    discriminator = WaveformDiscriminator(num_layers=dc.discriminator_layers,
                                          channels=dc.discriminator_channels,
                                          name="discriminator")
    discriminator.build((None, None))
    # Clips the all-replica gradient, like the student's Adam; no EMA.
    optimizer = ReplicaConsistentAdam(dc.discriminator_learning_rate, clipnorm=dc.clip_norm)
    optimizer.build(discriminator.trainable_variables)
    return discriminator, optimizer


def load_student(model_dir):
    """Loads a distilled student from its directory (config, stats, checkpoint)."""
    return load_trained_model(model_dir, "student", build_student)


def check_teacher_compatible(config, teacher_config):
    """The student's audio/feature settings must be the teacher's: names every difference."""
    mine, theirs = config.audio.to_dict(), teacher_config.audio.to_dict()
    diffs = [f"audio.{k}: student config {mine[k]!r} vs teacher {theirs[k]!r}"
             for k in sorted(mine) if mine[k] != theirs[k]]
    if diffs:
        raise ValueError(
            "The student config's audio/feature settings differ from the teacher's (the student "
            "must be conditioned exactly like its teacher): " + "; ".join(diffs)
        )
    hop = math.prod(config.student.upsample_factors)
    if hop != teacher_config.audio.hop_length:
        raise ValueError(
            f"student.upsample_factors multiply to {hop}, but the teacher's hop_length is "
            f"{teacher_config.audio.hop_length}."
        )


def _published(logs):
    out = {}
    for k, v in logs.items():
        name = k[4:] if k.startswith("val_") else k
        prefix = "val_" if k.startswith("val_") else "train_"
        if name == "loss":
            out[f"{prefix}total_loss"] = v
        else:
            out[f"{prefix}{name}_per_sample" if name in ("kl", "cross_entropy", "entropy",
                                                         "kl_mismatched") else f"{prefix}{name}"] = v
    return out


# Names of the evaluation figures in metrics.json (the KL family is per sample).
_EVAL_NAMES = {"kl": "kl_per_sample", "cross_entropy": "cross_entropy_per_sample",
               "entropy": "entropy_per_sample", "kl_mismatched": "kl_mismatched_per_sample",
               "perceptual": "perceptual_total", "perceptual_style": "perceptual_style",
               "perceptual_feature": "perceptual_feature"}


class FixedBatchEvaluator(keras.callbacks.Callback):
    """Evaluates every loss term on one fixed batch with fixed noise and fixed draws.

    Training-loss averages are noisy (new windows, noise and draws every step); this gives
    comparable before/after figures: `kl_per_sample` etc. in `metrics.json`, and
    `grad_norm_<term>`, the gradient norm of each weighted term (`loss_balance`), which
    says which term drives training.
    """

    def __init__(self, distiller, batch, writer, seed=1234):
        super().__init__()
        self.distiller = distiller
        self.batch = batch
        self.writer = writer
        self.seed = seed

    def evaluate(self):
        """Every active loss term on the fixed batch, plus the loudness of both signals."""
        # One pass gives the terms and which term drives training (the gradient norm of
        # each weighted term), with the EMA weights when the student keeps them.
        with cb.ema_weights_swapped(self.distiller):
            out, terms, norms = terms_with_gradient_norms(
                self.distiller, self.batch, noise_seed=self.seed, kl_seed=self.seed + 1)
        figures = {_EVAL_NAMES.get(k, k): float(v) for k, v in terms.items()}
        for name, audio in (("student", out["audio"]), ("real", self.batch["audio"])):
            rms = np.sqrt(np.mean(np.square(np.asarray(audio, "float64"))))
            figures[f"{name}_rms_db"] = float(20 * np.log10(rms + 1e-9))
        figures.update({f"grad_norm_{k}": v for k, v in norms.items()})
        return figures

    def on_epoch_end(self, epoch, logs=None):
        # Runs after MetricsWriter: merge and rewrite.
        figures = self.evaluate()
        self.writer.latest.update(figures)
        write_json(self.writer.path, self.writer.latest)


def build_distiller(config, student, teacher, seed=0, precision="off", perceptual_loss=None,
                    jit_compile=False):
    """The compiled `Distiller` of `config.distill` for `student` and the frozen `teacher`
    (with its discriminator when the config has an adversarial term), its optimizer built.
    Call it inside the strategy's scope. What `pwavenet distill` and the training
    benchmark run."""
    dc = config.distill
    power = (PowerLoss(fft_sizes=dc.power_fft_sizes, log_floor=dc.power_log_floor)
             if dc.power_weight > 0 else None)
    spectral = (MultiResolutionSTFTLoss(dc.spectral_fft_sizes,
                                         win_lengths=dc.spectral_win_lengths,
                                         hop_lengths=dc.spectral_hop_lengths)
                if dc.spectral_weight > 0 else None)
    ltas = (PowerLoss(fft_sizes=(dc.ltas_fft_size,), log_floor=dc.ltas_floor)
            if dc.ltas_weight > 0 else None)
    policy = dtype_policy(precision_name(precision))
    discriminator, disc_optimizer = build_discriminator(dc)
    distiller = Distiller(
        student, teacher, num_kl_samples=dc.num_kl_samples, kl_weight=dc.kl_weight,
        power_weight=dc.power_weight, spectral_weight=dc.spectral_weight,
        perceptual_weight=dc.perceptual_weight if perceptual_loss is not None else 0.0,
        contrastive_weight=dc.contrastive_weight,
        contrastive_gamma=dc.contrastive_gamma,
        power_loss=power, spectral_loss=spectral, perceptual_loss=perceptual_loss,
        seed=seed, adversarial_weight=dc.adversarial_weight,
        adversarial_start_step=dc.adversarial_start_step,
        feature_matching_weight=dc.feature_matching_weight,
        discriminator=discriminator, discriminator_optimizer=disc_optimizer,
        recompute_teacher=dc.recompute_teacher,
        ltas_weight=dc.ltas_weight, ltas_loss=ltas,
        # A mixed_float16 distiller gets a LossScaleOptimizer from compile.
        **({"dtype": policy} if policy else {}),
    )
    distiller.compile(optimizer=make_adam(dc), jit_compile=jit_compile)
    distiller.optimizer.build(student.trainable_variables)
    return distiller


@dataclasses.dataclass
class DistillTask:
    """Distills the teacher in `teacher_dir` into a student trained in `out_dir`.

    `out_dir` receives `config.json` (the audio settings are the teacher's; a config whose
    audio section differs is an error), `feature_stats.json` (the teacher's statistics),
    `pwavenet_model.json` (role and teacher path), `checkpoints/` (student, optimizer with
    its Adam moments and EMA slots, EMA weights with `distill.ema_decay`, the step, and
    with `distill.adversarial_weight > 0` the discriminator and its Adam; resumed on
    restart), `tensorboard/`, `metrics.json`, and with the perceptual loss on,
    `phone_classifier.keras`.

    Resume is exact: the batches, the student's noise and the KL draws are functions of
    (seed, step, example), so with `deterministic=True` a stopped and resumed run ends
    with the weights of an uninterrupted one. A mu-law teacher is refused before anything
    is written.

    `init_from`: a trained student directory whose weights a FRESH run starts from (not
    used when `out_dir` resumes); this config's flows may be deeper
    (`models/student_growth.py`), the rest of the student must be the same. The step count
    starts at 0; the optimizer starts from that run's Adam moments for the weights the two
    students share (zero for appended blocks).
    """

    config: object
    teacher_dir: str
    data_dir: str
    out_dir: str
    seed: int = 0
    verbose: int = 1
    log: object = print
    deterministic: bool = False
    strategy: str = "auto"
    mixed_precision: object = "off"
    jit_compile: bool = False
    init_from: object = None

    def run(self, steps=None):
        """Distills for `steps` (default: the config's); returns the published metrics.

        Under `multi_worker` only the chief writes to `out_dir`; a run that fails before
        its first checkpoint leaves no folder that looks trained. A mu-law teacher is
        refused before anything is written.
        """
        if model_dir_role(self.teacher_dir) is None and not os.path.exists(
                os.path.join(self.teacher_dir, "config.json")):
            raise CheckpointError(
                f"No trained teacher in {self.teacher_dir} (config.json and checkpoints missing)."
            )
        teacher_config = read_model_dir_config(self.teacher_dir, role="teacher")
        check_distillable(teacher_config)
        enable_determinism(self.deterministic)
        strategy = make_strategy(self.strategy)  # before anything touches the runtime
        with output_dir(self.out_dir, strategy) as out, removed_on_failure(out):
            return self._run(strategy, out, steps)

    def _run(self, strategy, out_dir, steps):
        precision = precision_name(self.mixed_precision)
        check_xla_precision(precision, self.jit_compile)
        warning = precision_warning(precision)
        if warning:
            self.log(f"warning: {warning}")
        with strategy.scope():
            teacher, teacher_config = load_teacher(self.teacher_dir, precision)
        cfg = self.config
        check_teacher_compatible(cfg, teacher_config)
        dc = cfg.distill
        if steps is not None:
            dc = dataclasses.replace(dc, steps=check_steps("steps", steps))
        cfg = dataclasses.replace(cfg, distill=dc, teacher=teacher_config.teacher)
        per_replica_batch(dc.batch_size, strategy)
        from pwavenet_tf.training.memory_estimate import check_step_memory
        check_step_memory(cfg, "distill", strategy.num_replicas_in_sync,
                          self.mixed_precision)
        if dc.contrastive_weight > 0 and dc.batch_size // strategy.num_replicas_in_sync < 2:
            raise ValueError("The contrastive loss needs at least 2 examples per replica "
                             "(distill.batch_size / replicas >= 2).")
        prepare_model_dir(out_dir, cfg, compare_sections=("audio", "student"),
                          role="student",
                          extra={"teacher_dir": os.path.abspath(self.teacher_dir)})
        stats_path = os.path.join(out_dir, STATS_FILE)
        if not os.path.exists(stats_path):
            shutil.copy(os.path.join(self.teacher_dir, STATS_FILE), stats_path)
        keras.utils.set_random_seed(self.seed)

        data = load_corpus_data(self.data_dir, cfg.audio, dc.num_validation, self.seed,
                                out_dir)
        multi = cfg.audio.num_speakers > 1

        with strategy.scope():
            student = build_student(cfg, data.stats, precision)
            perceptual = (self._perceptual_loss(cfg, data, out_dir) if dc.perceptual_weight > 0
                          else None)
            distiller = build_distiller(cfg, student, teacher, seed=self.seed,
                                        precision=precision, perceptual_loss=perceptual,
                                        jit_compile=self.jit_compile)
            optimizer = distiller.optimizer
            discriminator = getattr(distiller, "discriminator", None)
            disc_optimizer = getattr(distiller, "discriminator_optimizer", None)
        self.log(f"student: {student.count_params():,} parameters, {len(student.flows)} flows "
                 f"{list(cfg.student.flow_layers)}; teacher frozen "
                 f"({teacher.count_params():,} parameters); "
                 f"{strategy.num_replicas_in_sync} replica(s) of "
                 f"{dc.batch_size // strategy.num_replicas_in_sync} examples; "
                 f"precision {precision}")
        extras = None
        if discriminator is not None:
            extras = {"discriminator": discriminator,
                      "discriminator_optimizer": disc_optimizer}
            self.log(f"discriminator: {discriminator.count_params():,} parameters, "
                     f"{discriminator.num_layers} layers x {discriminator.channels} channels; "
                     f"adversarial weight {dc.adversarial_weight} from step "
                     f"{dc.adversarial_start_step}")

        ckpt = TrainingCheckpoint(out_dir, max_to_keep=dc.keep_checkpoints, model=student,
                                  optimizer=optimizer, log=self.log, extras=extras)
        restored = restore_training_state(ckpt, self.log)
        apply_configured_learning_rate(optimizer, dc.learning_rate)
        if disc_optimizer is not None:
            apply_configured_learning_rate(disc_optimizer, dc.discriminator_learning_rate)
        step = int(optimizer.iterations.numpy())
        if restored:
            self.log(f"resumed from {restored} at step {step}")
            if self.init_from:
                self.log(f"init_from {self.init_from} not used: the run resumes instead")
        elif self.init_from:
            self._init_student(student, optimizer)
        # The batches from `step` on are the ones an uninterrupted run sees there.
        train_ds = data.dataset("train", dc.window_samples, dc.batch_size, self.seed, multi,
                                start_step=step)

        eval_split = "valid" if data.examples("valid") else "train"
        eval_batch = next(iter(data.dataset(eval_split, dc.window_samples, dc.batch_size,
                                            self.seed + 7, multi, shuffle=False)))[0]
        metrics_path = os.path.join(out_dir, METRICS_FILE)
        previous = {}
        if restored and os.path.exists(metrics_path):
            with open(metrics_path) as f:
                previous = json.load(f)
        writer = cb.MetricsWriter(metrics_path, _published, extra={
            "num_parameters": int(student.count_params()),
            "receptive_field": int(student.receptive_field),
            "config": cfg.name,
            "eval_split": eval_split,
        })
        evaluator = FixedBatchEvaluator(distiller, eval_batch, writer)
        initial = previous.get("initial_kl_per_sample")
        if initial is None:
            initial = evaluator.evaluate()["kl_per_sample"]
        writer.extra["initial_kl_per_sample"] = initial
        self.log(f"initial KL per sample on the evaluation batch: {initial:.4f} nats")

        per_epoch, epochs, initial_epoch = plan_epochs(dc.steps, dc.checkpoint_every, step)

        def periodic(callback, every=dc.checkpoint_every):
            return cb.Periodic(callback, every, dc.steps)

        callbacks = [
            cb.NaNGuard(),
            periodic(cb.CheckpointCallback(ckpt)),
            periodic(writer),
            periodic(evaluator),
            keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")),
            periodic(cb.TensorBoardMedia(
                os.path.join(out_dir, "tensorboard", "media"),
                lambda: {"student": ("audio", distiller(eval_batch)["audio"]),
                         "real": ("audio", eval_batch["audio"])},
                cfg.audio.sample_rate), every=dc.steps),
        ]
        if dc.warmup_steps:
            callbacks.insert(0, cb.LearningRateWarmup(optimizer, dc.learning_rate,
                                                      dc.warmup_steps))
        if not is_multi_worker(strategy):
            callbacks.append(cb.GracefulStop(ckpt, dc.checkpoint_every, dc.steps, self.log))
        if initial_epoch >= epochs:
            self.log(f"already trained for {step} >= {dc.steps} steps; nothing to do")
            metrics = dict(previous)
        else:
            distiller.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch,
                          steps_per_epoch=per_epoch, callbacks=callbacks, verbose=self.verbose)
            metrics = writer.latest
        if strategy.num_replicas_in_sync > 1:
            self.log(f"weights fingerprint: {weights_fingerprint(student)}")
        self.student, self.teacher, self.distiller = student, teacher, distiller
        return metrics

    def _init_student(self, student, optimizer):
        """A fresh run's student starts from the trained student in `init_from`, grown to
        this config's deeper flows (`student_growth`: the same output at step 0), and its
        optimizer from that run's Adam moments for the weights they share."""
        from pwavenet_tf.models.student_growth import (grow_optimizer_state,
                                                       grow_student_weights)

        source, source_config = load_student(self.init_from)
        appended = grow_student_weights(source, student)
        # The source run's optimizer, restored (after growth: restoring with an optimizer
        # loads the raw, not the EMA, weights into `source`).
        source_optimizer = make_adam(source_config.distill)
        source_optimizer.build(source.trainable_variables)
        try:
            TrainingCheckpoint(self.init_from, model=source,
                               optimizer=source_optimizer).restore(require=True)
            carried = grow_optimizer_state(source, source_optimizer, student, optimizer)
            moments = f"Adam's moments of its {carried} weights carried over"
        except CheckpointError as e:
            moments = (f"Adam's moments start at zero (its checkpoint has no usable "
                       f"optimizer state: {str(e).splitlines()[0][:200]})")
        self.log(f"student initialised from {self.init_from}"
                 + (f"; {len(appended)} appended blocks start as the identity" if appended
                    else "") + f"; {moments}")

    def _perceptual_loss(self, cfg, data, out_dir):
        """The phone classifier of the perceptual loss: loaded, or trained now and saved.

        With `distill.perceptual_labels` (a folder of `<utterance id>.npy|.txt|.lab` frame
        label or forced-alignment files) it learns real phones; otherwise pseudo-phones,
        k-means clusters of MFCC frames of the training audio.
        """
        from pwavenet_tf.losses.perceptual_loss import PerceptualLoss
        from pwavenet_tf.training.pseudo_phones import (
            build_pseudo_phone_labels,
            read_frame_labels,
            train_phone_classifier,
        )

        dc = cfg.distill
        path = os.path.join(out_dir, CLASSIFIER_FILE)
        if os.path.exists(path):
            classifier = keras.saving.load_model(path)
        else:
            examples = data.examples("train")
            if dc.perceptual_labels:
                phone_map = {}
                labels = [read_frame_labels(_label_file(dc.perceptual_labels, u.id), len(f),
                                            cfg.audio.sample_rate, cfg.audio.hop_length,
                                            phone_map)
                          for u, _, f in examples]
                source = f"phone labels from {dc.perceptual_labels}"
            else:
                labels, _ = build_pseudo_phone_labels([(a, f) for _, a, f in examples],
                                                      num_clusters=dc.perceptual_classes,
                                                      seed=self.seed)
                source = f"{dc.perceptual_classes} k-means pseudo-phones"
            num_classes = int(max(int(np.max(lab)) for lab in labels) + 1)
            classifier, m = train_phone_classifier(
                [(a, lab) for (_, a, _), lab in zip(examples, labels)],
                num_classes=num_classes, hop_length=cfg.audio.hop_length,
                steps=dc.perceptual_classifier_steps, seed=self.seed,
            )
            classifier.save(path)
            self.log(f"phone classifier on {source}: train accuracy {m['train_accuracy']:.3f} "
                     f"(chance {m['chance_accuracy']:.3f})")
        return PerceptualLoss(classifier, style_weight=dc.perceptual_style_weight,
                              feature_weight=dc.perceptual_feature_weight)


def _label_file(folder, utterance_id):
    for ext in (".npy", ".txt", ".lab"):
        path = os.path.join(folder, utterance_id + ext)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"No phone label file for utterance {utterance_id!r} in {folder} "
        "(expected <id>.npy, <id>.txt or <id>.lab)."
    )


def read_teacher_dir(student_dir):
    """The teacher directory a student directory records (None if none).

    A relative path is relative to the student directory (so a teacher and student kept
    side by side, e.g. `../teacher`, move together), not to the working directory.
    """
    recorded = read_model_dir_info(student_dir).get("teacher_dir")
    if recorded and not os.path.isabs(recorded):
        recorded = os.path.normpath(os.path.join(student_dir, recorded))
    return recorded
