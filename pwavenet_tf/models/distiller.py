"""Probability density distillation of a WaveNet teacher into an IAF student."""

import keras
from keras import ops

from pwavenet_tf.losses import stateless_noise
from pwavenet_tf.losses.kl_divergence import check_teacher_density, kl_terms, logistic_noise


class Distiller(keras.Model):
    """Trains `student` to match the frozen `teacher` under `model.fit`.

    Inputs are the dataset's `({"audio", "features", ["speaker_id"]}, audio)` batches. Each
    step draws logistic noise, runs the student once in parallel, and `compute_loss`
    combines:

    - `kl_weight * KL(P_S || P_T)` per sample, estimated with `num_kl_samples` draws per
      timestep and ONE teacher pass (`pwavenet_tf.losses.kl_divergence.kl_terms`);
    - `power_weight * PowerLoss(x, y)`: STFT power of the student's sample x against the
      real audio y for the same conditioning (stops the student from whispering);
    - `spectral_weight * MultiResolutionSTFTLoss(x, y)`: frame-level spectral match (not in
      the paper; off by default; speeds up small-budget distillation);
    - `perceptual_weight * PerceptualLoss(x, y)`: Gram-matrix style (and optionally
      feature) distance of a phone classifier's features;
    - `contrastive_weight * (KL(c1) - gamma * KL(c2))`, c2 the conditioning of another
      utterance of the batch (the batch rolled by one).

    The teacher is frozen (`trainable = False`): Keras takes gradients of trainable weights
    only, but gradients still flow *through* the teacher's input into the student. Every
    term is tracked as its own metric (`kl`, `cross_entropy`, `entropy`, `power`, ...).

    Args:
        student: an `IAFStudent`.
        teacher: a trained `WaveNetTeacher` (frozen here).
        num_kl_samples: Monte Carlo draws per timestep for the cross-entropy.
        kl_weight, power_weight, spectral_weight, perceptual_weight, contrastive_weight:
            term weights (0 switches a term off).
        contrastive_gamma: gamma of the contrastive term.
        power_loss: a `PowerLoss` (required when power_weight > 0).
        spectral_loss: a `MultiResolutionSTFTLoss` (required when spectral_weight > 0).
        perceptual_loss: a `PerceptualLoss` (required when perceptual_weight > 0).
        seed: seed of the noise and Monte Carlo draws. In training every draw is keyed to
            (seed, step, example) (`losses.stateless_noise`), so a resumed run repeats an
            uninterrupted run's draws and each replica draws for its own examples.
    """

    def __init__(
        self,
        student,
        teacher,
        num_kl_samples=32,
        kl_weight=1.0,
        power_weight=0.0,
        spectral_weight=0.0,
        perceptual_weight=0.0,
        contrastive_weight=0.0,
        contrastive_gamma=0.3,
        power_loss=None,
        spectral_loss=None,
        perceptual_loss=None,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_kl_samples < 1:
            raise ValueError(f"`num_kl_samples` must be >= 1. Received: {num_kl_samples}")
        if power_weight > 0 and power_loss is None:
            raise ValueError("power_weight > 0 needs a `power_loss`.")
        if spectral_weight > 0 and spectral_loss is None:
            raise ValueError("spectral_weight > 0 needs a `spectral_loss`.")
        if perceptual_weight > 0 and perceptual_loss is None:
            raise ValueError("perceptual_weight > 0 needs a `perceptual_loss`.")
        check_teacher_density(teacher.output_distribution)
        if student.conditioning_dim != teacher.conditioning_dim:
            raise ValueError(
                "Student and teacher must use the same conditioning features. Received: "
                f"student conditioning_dim={student.conditioning_dim}, teacher "
                f"conditioning_dim={teacher.conditioning_dim}"
            )
        if student.hop_length != teacher.hop_length:
            raise ValueError(
                f"Student and teacher hop lengths differ: {student.hop_length} vs "
                f"{teacher.hop_length}"
            )
        if student.multi_speaker != teacher.multi_speaker:
            raise ValueError("Student and teacher disagree on multi-speaker conditioning.")
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.num_kl_samples = num_kl_samples
        self.kl_weight = kl_weight
        self.power_weight = power_weight
        self.spectral_weight = spectral_weight
        self.perceptual_weight = perceptual_weight
        self.contrastive_weight = contrastive_weight
        self.contrastive_gamma = contrastive_gamma
        self.power_loss = power_loss
        self.spectral_loss = spectral_loss
        self.perceptual_loss = perceptual_loss
        if perceptual_loss is not None:
            perceptual_loss.classifier.trainable = False
        self.seed = int(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self._active_terms()}

    def _active_terms(self):
        terms = ["kl", "cross_entropy", "entropy"]
        if self.power_weight > 0:
            terms.append("power")
        if self.spectral_weight > 0:
            terms.append("spectral")
        if self.perceptual_weight > 0:
            terms += ["perceptual", "perceptual_style", "perceptual_feature"]
        if self.contrastive_weight > 0:
            terms += ["contrastive", "kl_mismatched"]
        return terms

    @property
    def metrics(self):
        return super().metrics + list(self.trackers.values())

    def _step_seeds(self, stream, batch_size):
        """Per-example stateless seeds of this training step (see `stateless_noise`)."""
        return stateless_noise.example_seeds(self.seed, stream, self.optimizer.iterations,
                                             batch_size)

    def call(self, inputs, training=False, noise_seed=None):
        """One student sample for the batch's conditioning (noise drawn here).

        `noise_seed`: an int for fixed noise. Default: in training, noise keyed to (seed,
        step, example); otherwise the fixed seed `seed`.
        """
        features = inputs["features"]
        batch = ops.shape(features)[0]
        length = ops.shape(features)[1] * self.student.hop_length
        if noise_seed is None and training:
            seeds = self._step_seeds(stateless_noise.STUDENT_NOISE, batch)
            noise = stateless_noise.logistic_noise_per_example(seeds, [length])
        else:
            noise = logistic_noise((batch, length), self.seed if noise_seed is None else noise_seed)
        student_inputs = {"noise": noise, "features": features}
        if self.student.multi_speaker:
            student_inputs["speaker_id"] = inputs["speaker_id"]
        return self.student(student_inputs, training=training)

    def _kl_noise(self, student_out, kl_seed, training):
        """`[num_kl_samples, batch, time]` noise of the KL draws."""
        shape = ops.shape(student_out["audio"])
        if kl_seed is None and training:
            seeds = self._step_seeds(stateless_noise.KL_DRAWS, shape[0])
            noise = stateless_noise.logistic_noise_per_example(
                seeds, [self.num_kl_samples, shape[1]])
            return ops.transpose(noise, (1, 0, 2))
        seed = self.seed + 1 if kl_seed is None else kl_seed
        return logistic_noise((self.num_kl_samples, shape[0], shape[1]), seed)

    def loss_terms(self, inputs, student_out, kl_seed=None, training=False):
        """Every loss term (scalars, nats per sample for the KL family).

        The teacher is scored on the student's own sample `student_out["audio"]`. The KL
        draws are keyed to the step in training, else drawn from `kl_seed` (an int;
        default `seed + 1`); the matched and the mismatched (contrastive) KL use the same
        draws, so their difference carries no extra Monte Carlo noise.
        """
        features = inputs["features"]
        speaker = inputs.get("speaker_id") if self.teacher.multi_speaker else None
        conditioning = self.teacher.upsample_conditioning(features)
        global_cond = self.teacher.global_conditioning(speaker)
        noise = self._kl_noise(student_out, kl_seed, training)
        terms = {
            k: ops.mean(v)
            for k, v in kl_terms(self.teacher, student_out, conditioning, global_cond,
                                 self.num_kl_samples, noise=noise).items()
        }
        real = inputs["audio"]
        if self.power_weight > 0:
            terms["power"] = self.power_loss(student_out["audio"], real)
        if self.spectral_weight > 0:
            terms["spectral"] = self.spectral_loss(student_out["audio"], real)
        if self.perceptual_weight > 0:
            p = self.perceptual_loss(student_out["audio"], real)
            terms["perceptual"] = p["total"]
            terms["perceptual_style"] = p["style"]
            terms["perceptual_feature"] = p["feature"]
        if self.contrastive_weight > 0:
            # c2: the conditioning of another utterance (the batch rolled by one).
            other = ops.roll(conditioning, shift=1, axis=0)
            other_global = None if global_cond is None else ops.roll(global_cond, 1, axis=0)
            mismatched = kl_terms(self.teacher, student_out, other, other_global,
                                  self.num_kl_samples, noise=noise)
            terms["kl_mismatched"] = ops.mean(mismatched["kl"])
            terms["contrastive"] = terms["kl"] - self.contrastive_gamma * terms["kl_mismatched"]
        return terms

    def total_loss(self, terms):
        loss = self.kl_weight * terms["kl"]
        if self.power_weight > 0:
            loss = loss + self.power_weight * terms["power"]
        if self.spectral_weight > 0:
            loss = loss + self.spectral_weight * terms["spectral"]
        if self.perceptual_weight > 0:
            loss = loss + self.perceptual_weight * terms["perceptual"]
        if self.contrastive_weight > 0:
            loss = loss + self.contrastive_weight * terms["contrastive"]
        return loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.loss_terms(x, y_pred, training=training)
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return self.total_loss(terms)
