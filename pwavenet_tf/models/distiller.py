"""Probability density distillation of a WaveNet teacher into an IAF student."""

import keras
import tensorflow as tf
from keras import ops

from pwavenet_tf.losses import adversarial_loss, stateless_noise
from pwavenet_tf.losses.kl_divergence import check_teacher_density, kl_terms, logistic_noise
from pwavenet_tf.models.distributed_build import DistributedBuildMixin, logs_for_reduction


class Distiller(DistributedBuildMixin, keras.Model):
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
    - `ltas_weight * ltas_loss(x, y)`: the long-term average spectra compared in the log
      domain at a fine resolution (a log-floor `PowerLoss`, e.g. one 2,048-point FFT).
      Beyond the paper: the linear power loss weighs every bin by its energy, so a DC
      offset or a stationary tone in the quiet parts of the spectrum (the upsampler's
      frame-rate harmonics) costs it almost nothing; in the log domain each bin counts;
    - `perceptual_weight * PerceptualLoss(x, y)`: Gram-matrix style (and optionally
      feature) distance of a phone classifier's features;
    - `contrastive_weight * (KL(c1) - gamma * KL(c2))`, c2 the conditioning of another
      utterance of the batch (the batch rolled by one).

    The teacher is frozen (`trainable = False`): Keras takes gradients of trainable weights
    only, but gradients still flow *through* the teacher's input into the student. Every
    term is tracked as its own metric (`kl`, `cross_entropy`, `entropy`, `power`, ...).

    GAN-augmented distillation (Yamamoto et al. 2019), with `adversarial_weight > 0` and a
    `discriminator` (e.g. `WaveformDiscriminator`) with its own optimizer: one `fit` step
    (`train_step`) then
    (a) adds `adversarial_weight * LSGAN generator loss + feature_matching_weight *
        feature matching` (`losses.adversarial_loss`) of the discriminator on real audio
        and on the student's sample to the loss above, once `optimizer.iterations >=
        adversarial_start_step` (0 before), and updates the student's weights only;
    (b) updates the discriminator with the LSGAN discriminator loss, real audio against
        the same student sample (no gradient reaches the student), from step 0 on, so it
        has learned the task when the student's adversarial terms switch on.
    The discriminator runs once per step on real and student audio together; both updates
    use that pass. `adversarial`, `feature_matching` and `discriminator_loss` are tracked
    (the first two as measured, also before the start step). With `adversarial_weight` 0
    the step is Keras's own.

    Args:
        student: an `IAFStudent`.
        teacher: a trained `WaveNetTeacher` (frozen here).
        num_kl_samples: Monte Carlo draws per timestep for the cross-entropy.
        kl_weight, power_weight, spectral_weight, perceptual_weight, contrastive_weight:
            term weights (0 switches a term off).
        contrastive_gamma: gamma of the contrastive term.
        power_loss: a `PowerLoss` (required when power_weight > 0).
        spectral_loss: a `MultiResolutionSTFTLoss` (required when spectral_weight > 0).
        ltas_weight, ltas_loss: weight and loss (a log-floor `PowerLoss`) of the long-term
            spectrum term (required together).
        perceptual_loss: a `PerceptualLoss` (required when perceptual_weight > 0).
        seed: seed of the noise and Monte Carlo draws. In training every draw is keyed to
            (seed, step, example) (`losses.stateless_noise`), so a resumed run repeats an
            uninterrupted run's draws and each replica draws for its own examples.
        adversarial_weight, feature_matching_weight: weights of the student's GAN terms
            (0: off; feature matching needs the adversarial term on).
        adversarial_start_step: the step from which the student's GAN terms count.
        discriminator: a layer mapping audio `[batch, time]` to `(logits, feature maps)`
            (required when adversarial_weight > 0).
        discriminator_optimizer: its optimizer, built on its trainable variables before a
            checkpoint is restored (required when adversarial_weight > 0).
        recompute_teacher: run the teacher's passes on the student's sample under
            `tf.recompute_grad` (their activations are recomputed in the backward pass
            instead of kept: less memory, one more teacher forward pass per term; the same
            loss and gradients). See BENCHMARKS.md for the measured saving.
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
        adversarial_weight=0.0,
        adversarial_start_step=0,
        feature_matching_weight=0.0,
        discriminator=None,
        discriminator_optimizer=None,
        recompute_teacher=False,
        ltas_weight=0.0,
        ltas_loss=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("adversarial_weight", adversarial_weight),
                            ("feature_matching_weight", feature_matching_weight),
                            ("adversarial_start_step", adversarial_start_step)):
            if not value >= 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
        if feature_matching_weight > 0 and not adversarial_weight > 0:
            raise ValueError(
                "feature_matching_weight > 0 needs adversarial_weight > 0. Received: "
                f"adversarial_weight={adversarial_weight}")
        if adversarial_weight > 0 and (discriminator is None or discriminator_optimizer is None):
            raise ValueError("adversarial_weight > 0 needs a `discriminator` and a "
                             "`discriminator_optimizer`.")
        if not adversarial_weight > 0 and (discriminator is not None
                                           or discriminator_optimizer is not None):
            raise ValueError(
                "A `discriminator` is only used with adversarial_weight > 0. Received: "
                f"adversarial_weight={adversarial_weight}")
        if num_kl_samples < 1:
            raise ValueError(f"`num_kl_samples` must be >= 1. Received: {num_kl_samples}")
        if power_weight > 0 and power_loss is None:
            raise ValueError("power_weight > 0 needs a `power_loss`.")
        if spectral_weight > 0 and spectral_loss is None:
            raise ValueError("spectral_weight > 0 needs a `spectral_loss`.")
        if not ltas_weight >= 0:
            raise ValueError(f"`ltas_weight` must be >= 0. Received: ltas_weight={ltas_weight!r}")
        if ltas_weight > 0 and ltas_loss is None:
            raise ValueError("ltas_weight > 0 needs an `ltas_loss`.")
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
        self.ltas_weight = float(ltas_weight)
        self.ltas_loss = ltas_loss
        self.perceptual_loss = perceptual_loss
        if perceptual_loss is not None:
            perceptual_loss.classifier.trainable = False
        self.seed = int(seed)
        self.recompute_teacher = bool(recompute_teacher)
        self.adversarial_weight = float(adversarial_weight)
        self.adversarial_start_step = int(adversarial_start_step)
        self.feature_matching_weight = float(feature_matching_weight)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self._active_terms()}
        self.adversarial_trackers = {}
        if self.adversarial:
            self.discriminator = discriminator
            self.discriminator_optimizer = discriminator_optimizer
            self.adversarial_trackers = {
                name: keras.metrics.Mean(name=name)
                for name in ("adversarial", "feature_matching", "discriminator_loss")}

    @property
    def adversarial(self):
        """Whether the step trains with a discriminator."""
        return self.adversarial_weight > 0

    def _active_terms(self):
        terms = ["kl", "cross_entropy", "entropy"]
        if self.power_weight > 0:
            terms.append("power")
        if self.spectral_weight > 0:
            terms.append("spectral")
        if self.ltas_weight > 0:
            terms.append("ltas")
        if self.perceptual_weight > 0:
            terms += ["perceptual", "perceptual_style", "perceptual_feature"]
        if self.contrastive_weight > 0:
            terms += ["contrastive", "kl_mismatched"]
        return terms

    @property
    def metrics(self):
        return (super().metrics + list(self.trackers.values())
                + list(self.adversarial_trackers.values()))

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
                                 self.num_kl_samples, noise=noise,
                                 recompute_teacher=self.recompute_teacher).items()
        }
        real = inputs["audio"]
        if self.power_weight > 0:
            terms["power"] = self.power_loss(student_out["audio"], real)
        if self.spectral_weight > 0:
            terms["spectral"] = self.spectral_loss(student_out["audio"], real)
        if self.ltas_weight > 0:
            terms["ltas"] = self.ltas_loss(student_out["audio"], real)
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
                                  self.num_kl_samples, noise=noise,
                                  recompute_teacher=self.recompute_teacher)
            terms["kl_mismatched"] = ops.mean(mismatched["kl"])
            terms["contrastive"] = terms["kl"] - self.contrastive_gamma * terms["kl_mismatched"]
        return terms

    def total_loss(self, terms):
        loss = self.kl_weight * terms["kl"]
        if self.power_weight > 0:
            loss = loss + self.power_weight * terms["power"]
        if self.spectral_weight > 0:
            loss = loss + self.spectral_weight * terms["spectral"]
        if self.ltas_weight > 0:
            loss = loss + self.ltas_weight * terms["ltas"]
        if self.perceptual_weight > 0:
            loss = loss + self.perceptual_weight * terms["perceptual"]
        if self.contrastive_weight > 0:
            loss = loss + self.contrastive_weight * terms["contrastive"]
        return loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.loss_terms(x, y_pred, training=training)
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        # Keras scales compiled losses by 1/replicas (the replicas' gradients are summed);
        # a custom compute_loss must do the same, or R replicas take an R-times step.
        return self.total_loss(terms) * (1.0 / stateless_noise.replica_count())

    def adversarial_terms(self, inputs, student_out):
        """`{"adversarial", "feature_matching", "discriminator_loss"}` of one discriminator
        pass over real audio and the student's sample (concatenated on the batch axis).

        `adversarial` (LSGAN generator loss) and `feature_matching` carry gradients to the
        student through its sample; `discriminator_loss` is meant for the discriminator's
        variables only (its gradient w.r.t. them is that of real vs. a stop-gradiented
        sample).
        """
        real = ops.cast(inputs["audio"], student_out["audio"].dtype)
        fake = student_out["audio"]
        batch = ops.shape(real)[0]
        logits, features = self.discriminator(ops.concatenate([real, fake], axis=0))
        real_logits, fake_logits = logits[:batch], logits[batch:]
        real_features = [ops.stop_gradient(f[:batch]) for f in features]
        fake_features = [f[batch:] for f in features]
        return {
            "adversarial": adversarial_loss.generator_loss(fake_logits),
            "feature_matching": adversarial_loss.feature_matching_loss(real_features,
                                                                       fake_features),
            # Gradients w.r.t. the discriminator's variables only (they are those of a
            # stop-gradiented sample); a stop_gradient here would cut its fake half.
            "discriminator_loss": adversarial_loss.discriminator_loss(real_logits, fake_logits),
        }

    def adversarial_total(self, terms):
        """The student's weighted GAN terms (without the start-step gate)."""
        loss = self.adversarial_weight * terms["adversarial"]
        if self.feature_matching_weight > 0:
            loss = loss + self.feature_matching_weight * terms["feature_matching"]
        return loss

    def train_step(self, data):
        """Keras's step; with a discriminator, the GAN step of the class docstring.

        TensorFlow edge (`tf.GradientTape`), like Keras's own TensorFlow `train_step`.
        """
        if not self.adversarial:
            return super().train_step(data)
        from keras.src.losses.loss import unscale_loss_for_distribution

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_vars = self.student.trainable_variables
        disc_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            # The student's usual loss (and its trackers), exactly as without a discriminator.
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                      training=True)
            # Scaled by 1/replicas like the loss of `compute_loss` (replica gradients add up).
            per_replica = 1.0 / stateless_noise.replica_count()
            with tf.GradientTape() as disc_tape:
                adv = self.adversarial_terms(x, y_pred)
                d_loss = self.discriminator_optimizer.scale_loss(
                    adv["discriminator_loss"] * per_replica)
            started = self.optimizer.iterations >= self.adversarial_start_step
            gan = self.adversarial_total(adv) * per_replica
            # `where`, not a 0/1 factor: before the start the GAN gradient is exactly 0.
            loss = loss + ops.where(started, ops.cast(gan, loss.dtype), ops.zeros_like(loss))
            self._loss_tracker.update_state(unscale_loss_for_distribution(loss),
                                            sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
            scaled = self.optimizer.scale_loss(loss)
        # (a) the student; the teacher is frozen and the discriminator is not in the list.
        grads = tape.gradient(scaled, student_vars)
        self.optimizer.apply_gradients(zip(grads, student_vars))
        # (b) the discriminator, real audio against the student's (stop-gradiented) sample.
        d_grads = disc_tape.gradient(d_loss, disc_vars)
        self.discriminator_optimizer.apply_gradients(zip(d_grads, disc_vars))
        for name, tracker in self.adversarial_trackers.items():
            tracker.update_state(adv[name])
        return logs_for_reduction(
            self.compute_metrics(x, y, y_pred, sample_weight=sample_weight),
            self.distribute_strategy)
