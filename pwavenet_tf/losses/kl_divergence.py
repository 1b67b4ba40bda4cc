"""Monte Carlo estimate of KL(P_S || P_T) for probability density distillation."""

import keras
from keras import ops

from pwavenet_tf.config import distillation_density_problem

LOGISTIC_ENTROPY_CONSTANT = 2.0  # H(Logistic(mu, s)) = log s + 2


def logistic_noise(shape, seed, dtype="float32", eps=1e-5):
    """Logistic(0, 1) noise `log u - log(1 - u)`, u ~ U(eps, 1 - eps) (`keras.random`)."""
    u = keras.random.uniform(shape, minval=eps, maxval=1.0 - eps, dtype=dtype, seed=seed)
    return ops.log(u) - ops.log1p(-u)


def check_teacher_density(output_distribution):
    """Distillation needs a continuous teacher density; a mu-law teacher is refused."""
    problem = distillation_density_problem(output_distribution)
    if problem:
        raise ValueError(problem[0].upper() + problem[1:])


def teacher_log_density(teacher, params, x):
    """log p_T(x) per element: the teacher's mixture as a density on the real line.

    `DiscretizedMixLogistic.log_density`: the mass of the bin-wide interval around x over
    its width, with no edge bins, so the student's unclipped draws beyond +-1 are scored by
    a density (the edge bins' tail mass would bias the cross-entropy down and break
    KL >= 0). `x` may carry leading draw axes (`[M, B, T]` against `[B, T, 3K]` params):
    only x is broadcast over the draws, the mixture terms of the parameters are not copied.
    """
    check_teacher_density(teacher.output_distribution)
    return teacher.distribution(params).log_density(x)


def teacher_params(teacher, x, conditioning, global_conditioning, recompute=False):
    """The teacher's teacher-forced `[B, T, 3K]` parameters on `x`.

    `recompute=True` runs the pass under `tf.recompute_grad`: its activations are not kept
    for the backward pass but recomputed there (one more forward pass of the teacher),
    which trades compute for memory; the values and gradients are the same.
    """
    if not recompute:
        return teacher.params_from_conditioning(x, conditioning, global_conditioning)
    import tensorflow as tf

    if global_conditioning is None:
        return tf.recompute_grad(
            lambda a, c: teacher.params_from_conditioning(a, c, None))(x, conditioning)
    return tf.recompute_grad(teacher.params_from_conditioning)(x, conditioning,
                                                               global_conditioning)


def kl_terms(teacher, student_out, conditioning, global_conditioning, num_samples, seed=None,
             noise=None, recompute_teacher=False):
    """Per-timestep cross-entropy, entropy and KL, each `[batch, time]` (nats).

    1. `student_out` holds one student sample x with its per-timestep Logistic(mu_tot,
       s_tot) parameters (one parallel pass).
    2. The frozen teacher runs ONCE on x (teacher forcing, in parallel), giving every
       p_T(x_t | x_<t).
    3. For every t, `num_samples` draws x'_t = mu_tot + s_tot * logistic noise are scored
       under p_T(. | x_<t); their mean negative log density estimates H(p_S, p_T) at t.

    The draws' noise is `noise` (`[num_samples, batch, time]`, e.g. keyed to the step by
    `stateless_noise`) or drawn from `seed` (an int or a `keras.random.SeedGenerator`).
    Gradients reach the student through the reparameterised draws (mu_tot, s_tot) and
    through x_<t into the teacher's input. Nothing is rounded or cast to integers.
    `recompute_teacher`: recompute the teacher's pass in the backward pass instead of
    keeping its activations (`teacher_params`).
    """
    x = student_out["audio"]
    mu = student_out["mu_tot"]
    log_s = student_out["log_s_tot"]
    params = teacher_params(teacher, x, conditioning, global_conditioning,
                            recompute=recompute_teacher)
    if noise is None:
        shape = ops.shape(x)
        noise = logistic_noise((num_samples, shape[0], shape[1]), seed)
    noise = ops.cast(noise, mu.dtype)
    draws = ops.expand_dims(mu, 0) + ops.expand_dims(ops.exp(log_s), 0) * noise
    log_p = teacher_log_density(teacher, params, draws)
    cross_entropy = -ops.mean(log_p, axis=0)
    entropy = log_s + LOGISTIC_ENTROPY_CONSTANT
    return {"cross_entropy": cross_entropy, "entropy": entropy, "kl": cross_entropy - entropy}
