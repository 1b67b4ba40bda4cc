"""Monte Carlo estimate of KL(P_S || P_T) for probability density distillation."""

import math

import keras
from keras import ops

LOGISTIC_ENTROPY_CONSTANT = 2.0  # H(Logistic(mu, s)) = log s + 2


def logistic_noise(shape, seed, dtype="float32", eps=1e-5):
    """Logistic(0, 1) noise `log u - log(1 - u)`, u ~ U(eps, 1 - eps) (`keras.random`)."""
    u = keras.random.uniform(shape, minval=eps, maxval=1.0 - eps, dtype=dtype, seed=seed)
    return ops.log(u) - ops.log1p(-u)


def teacher_log_density(teacher, params, x):
    """log p_T(x) per element as a density on [-1, 1].

    The teacher's output is a distribution over 16-bit bins; the KL is between densities,
    so the bin mass is divided by the bin width (2 delta). This only shifts the estimate by
    a constant (it does not change gradients) and makes the reported KL >= 0.
    """
    dist = teacher.distribution(params)
    log_mass = dist.log_prob(x)
    if teacher.output_distribution == "mixture_of_logistics":
        return log_mass - math.log(2.0 * dist.delta)
    # mu-law: a categorical over non-uniform bins; use the mass as is (8-bit option).
    return log_mass


def kl_terms(teacher, student_out, conditioning, global_conditioning, num_samples, seed):
    """Per-timestep cross-entropy, entropy and KL, each `[batch, time]` (nats).

    1. `student_out` holds one student sample x with its per-timestep Logistic(mu_tot,
       s_tot) parameters (one parallel pass).
    2. The frozen teacher runs ONCE on x (teacher forcing, in parallel), giving every
       p_T(x_t | x_<t).
    3. For every t, `num_samples` draws x'_t = mu_tot + s_tot * logistic noise are scored
       under p_T(. | x_<t); their mean negative log density estimates H(p_S, p_T) at t.

    Gradients reach the student through the reparameterised draws (mu_tot, s_tot) and
    through x_<t into the teacher's input. Nothing is rounded or cast to integers.
    """
    x = student_out["audio"]
    mu = student_out["mu_tot"]
    log_s = student_out["log_s_tot"]
    params = teacher.params_from_conditioning(x, conditioning, global_conditioning)
    shape = ops.shape(x)
    noise = logistic_noise((num_samples, shape[0], shape[1]), seed)
    draws = ops.expand_dims(mu, 0) + ops.expand_dims(ops.exp(log_s), 0) * noise
    params_k = ops.broadcast_to(
        ops.expand_dims(params, 0), (num_samples,) + tuple(ops.shape(params))
    )
    log_p = teacher_log_density(teacher, params_k, draws)
    cross_entropy = -ops.mean(log_p, axis=0)
    entropy = log_s + LOGISTIC_ENTROPY_CONSTANT
    return {"cross_entropy": cross_entropy, "entropy": entropy, "kl": cross_entropy - entropy}
