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


class EdgeTeacher:
    """A teacher whose p_T puts its mass near +-1 (two logistics at -0.97 and 0.985)."""

    output_distribution = "mixture_of_logistics"

    def params_from_conditioning(self, audio, conditioning, global_conditioning=None):
        shape = ops.shape(audio)
        ones = ops.ones((shape[0], shape[1], 1))
        zero = 0.0 * audio[..., None]
        return ops.concatenate([ones * 0.0, ones * 0.0, ones * -0.97 + zero, ones * 0.985 + zero,
                                ones * np.log(0.02), ones * np.log(0.01)], axis=-1)

    def distribution(self, params):
        return DiscretizedMixLogistic(params, num_classes=65536, log_scale_min=-14.0)


def _edge_kl(seed, score):
    """Mean KL estimate of a student Logistic(0.995, 0.012) (a third of its draws beyond 1)."""
    batch, length = 4, 128
    out = {"audio": tf.zeros((batch, length)), "mu_tot": tf.fill((batch, length), 0.995),
           "log_s_tot": tf.fill((batch, length), float(np.log(0.012)))}
    if score is None:
        return float(np.mean(kl_terms(EdgeTeacher(), out, None, None, 16, seed)["kl"]))
    # The old estimator: the bin mass with edge bins, divided by the bin width.
    from pwavenet_tf.losses.kl_divergence import logistic_noise

    noise = logistic_noise((16, batch, length), seed)
    draws = out["mu_tot"][None] + tf.exp(out["log_s_tot"])[None] * noise
    dist = EdgeTeacher().distribution(EdgeTeacher().params_from_conditioning(out["audio"], None))
    ce = -np.mean(score(dist, draws))
    return float(ce - np.mean(out["log_s_tot"] + 2.0))


def test_kl_is_non_negative_for_a_teacher_with_mass_at_the_edges():
    estimates = [_edge_kl(seed, None) for seed in range(20)]
    # Exact KL by quadrature against the continuous mixture (the bin smoothing changes it
    # by < 1e-6 here).
    x = np.linspace(0.995 - 0.6, 0.995 + 0.6, 400001)
    lp = _logistic_logpdf(x, 0.995, 0.012)
    lq = np.logaddexp(_logistic_logpdf(x, -0.97, 0.02), _logistic_logpdf(x, 0.985, 0.01)) + np.log(0.5)
    truth = float(np.trapz(np.exp(lp) * (lp - lq), x))
    assert truth > 0.3
    mean, stderr = np.mean(estimates), np.std(estimates) / np.sqrt(len(estimates))
    assert min(estimates) > 0.0
    assert abs(mean - truth) < 4 * stderr + 1e-3, (mean, truth, stderr)


def test_the_edge_bin_tail_mass_would_make_the_kl_negative():
    """What the test above guards against: scoring draws beyond +-1 with the edge bins."""
    def tail_mass(dist, x):
        return dist.log_prob(x) - np.log(2.0 * dist.delta)

    estimates = [_edge_kl(seed, tail_mass) for seed in range(5)]
    assert max(estimates) < -1.0, estimates
