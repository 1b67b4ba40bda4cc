"""The KL estimator against an exact value, with a teacher known in closed form."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from pwavenet_tf.distributions.discretized_mix_logistic import DiscretizedMixLogistic
from pwavenet_tf.losses.kl_divergence import kl_terms

MU_T, S_T = 0.05, 0.03  # the teacher: Logistic(MU_T, S_T) at every timestep
MU_S, S_S = 0.0, 0.02  # the student: Logistic(MU_S, S_S)


class LogisticTeacher:
    """A teacher with the WaveNetTeacher interface whose p_T(x_t | x_<t) is a fixed logistic."""

    output_distribution = "mixture_of_logistics"

    def params_from_conditioning(self, audio, conditioning, global_conditioning=None):
        shape = ops.shape(audio)
        ones = ops.ones((shape[0], shape[1], 1))
        # one component: logit 0, mean MU_T (+ a term that lets gradients reach x), log-scale
        return ops.concatenate([ones * 0.0, ones * MU_T + 0.0 * audio[..., None],
                                ones * np.log(S_T)], axis=-1)

    def distribution(self, params):
        return DiscretizedMixLogistic(params, num_classes=65536, log_scale_min=-14.0)


def _logistic_logpdf(x, mu, s):
    z = (x - mu) / s
    return -z - np.log(s) - 2 * np.logaddexp(0, -z)


def exact_kl():
    """KL(Logistic(MU_S, S_S) || Logistic(MU_T, S_T)) by fine quadrature (float64)."""
    x = np.linspace(MU_S - 60 * S_S, MU_S + 60 * S_S, 400001)
    lp = _logistic_logpdf(x, MU_S, S_S)
    lq = _logistic_logpdf(x, MU_T, S_T)
    return float(np.trapz(np.exp(lp) * (lp - lq), x))


def _estimate(num_samples, seed, batch=4, length=256):
    out = {
        "audio": tf.zeros((batch, length)),
        "mu_tot": tf.fill((batch, length), MU_S),
        "log_s_tot": tf.fill((batch, length), float(np.log(S_S))),
    }
    terms = kl_terms(LogisticTeacher(), out, None, None, num_samples, seed)
    return {k: ops.convert_to_numpy(v) for k, v in terms.items()}


def test_entropy_is_analytic():
    terms = _estimate(4, seed=1)
    np.testing.assert_allclose(terms["entropy"], np.log(S_S) + 2.0, rtol=1e-6)


def test_estimate_matches_exact_kl_within_monte_carlo_error():
    truth = exact_kl()
    assert truth > 0.05  # a real mismatch, not a trivial zero
    terms = _estimate(32, seed=3)
    per_t = terms["kl"].ravel()
    estimate = per_t.mean()
    stderr = per_t.std() / np.sqrt(per_t.size)
    # The 16-bit discretisation changes log p_T by < 1e-6 here (S_T >> bin width).
    assert abs(estimate - truth) < 4 * stderr + 1e-4, (estimate, truth, stderr)


def test_variance_falls_as_draws_grow():
    def spread(k):
        return np.std([_estimate(k, seed=s, batch=1, length=64)["kl"].mean() for s in range(12)])

    few, many = spread(1), spread(16)
    # Variance scales as 1/K: 16x draws -> 4x smaller std (allow sampling noise).
    assert many < few / 2.5, (few, many)


@pytest.mark.parametrize("num_samples", [1, 8])
def test_gradients_reach_student_parameters(num_samples):
    mu = tf.Variable(tf.fill((2, 32), MU_S))
    log_s = tf.Variable(tf.fill((2, 32), float(np.log(S_S))))
    with tf.GradientTape() as tape:
        out = {"audio": mu * 1.0, "mu_tot": mu, "log_s_tot": log_s}
        kl = tf.reduce_mean(kl_terms(LogisticTeacher(), out, None, None, num_samples, 0)["kl"])
    g_mu, g_s = tape.gradient(kl, [mu, log_s])
    assert np.all(np.isfinite(g_mu.numpy())) and np.abs(g_mu.numpy()).sum() > 0
    # The student mean sits left of the teacher's: the KL falls as mu moves right.
    assert g_mu.numpy().mean() < 0
    assert np.all(np.isfinite(g_s.numpy())) and np.abs(g_s.numpy()).sum() > 0
