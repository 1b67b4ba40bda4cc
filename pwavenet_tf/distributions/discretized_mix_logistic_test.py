"""Tests for the discretized mixture of logistics.

Tolerances (all on log-probabilities in nats unless stated):

- float64 implementation vs. the float64 numpy reference of the math doc's formula
  (same bin masses, same 1e-5 density fallback): 1e-9 absolute.
- float32 implementation vs. the same reference evaluated on the float32-rounded inputs:
  2e-5 absolute + 2e-5 relative. (The bin masses themselves are computed without
  cancellation, so float32 loses little; see the module docstring.)
- float64 implementation vs. TensorFlow Probability's `QuantizedDistribution` bin masses
  (with the doc's density fallback applied per component on top): 1e-9 relative+absolute.
- Normalization: 1e-5 over the 256 8-bit centres; 1e-8 (float64) and 1e-4 (float32)
  over the 65,536 16-bit centres; 3e-5 where a component is narrower than a bin (the
  doc's density fallback drops up to ~1e-5 of mass per side there; see NARROW_ATOL).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.distributions.discretized_mix_logistic import (
    DiscretizedMixLogistic,
    DiscretizedMixLogisticLoss,
    mix_logistic_nll_loss,
    num_params,
)

N16 = 65536
N8 = 256


def centres(num_classes, q):
    """Bin centres x_q = -1 + 2 q / (N - 1) (== (pcm + 32768) * 2 / 65535 - 1 for 16 bit)."""
    return -1.0 + 2.0 * np.asarray(q, np.float64) / (num_classes - 1)


def pack(logits, means, log_scales):
    return np.concatenate([logits, means, log_scales], axis=-1)


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def reference_log_prob(x, params, num_classes, log_scale_min):
    """Float64 numpy transcription of the math doc (independent of the keras.ops code).

    Bin masses are differences of sigmoids on the bin edges x -+ delta. The difference is
    taken on whichever side of the logistic avoids cancellation in float64: lower tail
    `sigma(hi) - sigma(lo)`, upper tail `sigma(-lo) - sigma(-hi)` (same number). Interior
    masses under 1e-5 use the density at the centre times 2 delta, as the doc says.
    """
    x = np.asarray(x, np.float64)[..., None]
    params = np.asarray(params, np.float64)
    k = params.shape[-1] // 3
    logits, mu, log_s = params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]
    log_s = np.maximum(log_s, log_scale_min)
    s = np.exp(log_s)
    delta = 1.0 / (num_classes - 1)
    hi = (x + delta - mu) / s
    lo = (x - delta - mu) / s
    mass = np.where(lo > 0, _sigmoid(-lo) - _sigmoid(-hi), _sigmoid(hi) - _sigmoid(lo))
    mid = (x - mu) / s
    log_pdf = -mid - log_s - 2.0 * np.logaddexp(0.0, -mid)
    with np.errstate(divide="ignore"):
        interior = np.where(mass > 1e-5, np.log(mass), log_pdf + np.log(2 * delta))
        lower = np.log(_sigmoid(hi))
        upper = np.log(_sigmoid(-lo))
    per_comp = np.where(x < -1 + delta, lower, np.where(x > 1 - delta, upper, interior))
    log_pi = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    return np.logaddexp.reduce(per_comp + log_pi, axis=-1)


def _cases(num_classes):
    """(name, params [K*3], bin indices to test) for broad, narrow and mixed scales."""
    delta = 1.0 / (num_classes - 1)
    narrow = math.log(0.4 * 2 * delta)  # s = 0.4 bins
    tiny = -14.0 if num_classes == N16 else -7.0  # at the floor
    q_mu = [num_classes // 3, num_classes // 2 + 7, (9 * num_classes) // 10]
    mu = centres(num_classes, q_mu) + 0.3 * delta  # off-centre means
    near = sorted({q + d for q in q_mu for d in (-3, -1, 0, 1, 2)})
    edges = [0, 1, 2, num_classes - 3, num_classes - 2, num_classes - 1]
    spread = list(np.linspace(0, num_classes - 1, 23).astype(int))
    logits = np.array([0.3, -0.2, 0.5])
    return [
        ("broad", pack(logits, mu, np.log([0.3, 0.05, 0.6])), near + edges + spread),
        ("narrow", pack(logits, mu, np.array([narrow, narrow + 1.0, tiny])), near),
        # Means at the edges so that the edge bins hold real mass.
        ("edges", pack(logits, np.array([-1.0, 1.0 - delta, 0.0]), np.array([narrow, narrow + 2, -1.0])), edges),
        ("mixed", pack(logits, mu, np.array([narrow, -2.0, tiny])), near + edges + spread),
    ]


def _case_ids():
    return [f"{n}-{c[0]}" for n in (N8, N16) for c in _cases(n)]


def _all_cases():
    return [(n, *c) for n in (N8, N16) for c in _cases(n)]


@pytest.mark.parametrize("num_classes,name,params,qs", _all_cases(), ids=_case_ids())
def test_log_prob_matches_reference(num_classes, name, params, qs):
    lsm = -14.0 if num_classes == N16 else -7.0
    x = centres(num_classes, qs)
    p = np.broadcast_to(params, x.shape + params.shape)
    want = reference_log_prob(x, p, num_classes, lsm)
    assert np.all(np.isfinite(want))

    got64 = np.asarray(DiscretizedMixLogistic(p, num_classes, lsm).log_prob(x))
    np.testing.assert_allclose(got64, want, rtol=0, atol=1e-9)

    # float32: compare against the reference on the float32-rounded inputs, so that only
    # the computation (not the rounding of x and mu themselves) is measured.
    x32, p32 = x.astype(np.float32), p.astype(np.float32)
    want32 = reference_log_prob(x32, p32, num_classes, lsm)
    got32 = np.asarray(DiscretizedMixLogistic(p32, num_classes, lsm).log_prob(x32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want32, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("num_classes", [N8, N16])
def test_log_prob_matches_tfp_quantized_distribution(num_classes):
    """Cross-check against TFP's bin masses, with the doc's density fallback on top.

    `QuantizedDistribution` works on integers with bins `(q - 1, q]` and edge bins at `low`
    and `high`. Map x to `y = (x + 1) / (2 delta)`, which sends the bin centres to the
    integers `q = 0..N-1` and the bins `[x - delta, x + delta]` to `[q - 1/2, q + 1/2]`.
    The logistic maps to `Logistic((mu + 1) / (2 delta), s / (2 delta))`; shifting its
    location by -1/2 turns TFP's `(q - 1, q]` into `(q - 1/2, q + 1/2]`. With `low = 0`,
    `high = N - 1` the edge bins take all the mass below 1/2 and above N - 3/2, exactly
    the edge bins of the doc. Everything is affine, so the masses are identical.

    The doc replaces interior bin masses under 1e-5 by `pdf(x) * 2 delta`; TFP's exact
    masses differ from that (by orders of magnitude in the tails of components narrower
    than a bin), so the same rule is applied per component to TFP's masses, with TFP's
    `Logistic.log_prob` as the density.
    """
    tfp = pytest.importorskip("tensorflow_probability")
    tfd = tfp.distributions
    lsm = -14.0 if num_classes == N16 else -7.0
    delta = 1.0 / (num_classes - 1)
    for name, params, qs in _cases(num_classes):
        qs = np.asarray(qs, np.float64)
        x = centres(num_classes, qs)
        k = params.shape[-1] // 3
        logits, mu, log_s = params[:k], params[k : 2 * k], np.maximum(params[2 * k :], lsm)
        quantized = tfd.QuantizedDistribution(
            tfd.Logistic((mu + 1) / (2 * delta) - 0.5, np.exp(log_s) / (2 * delta)),
            low=np.float64(0.0),
            high=np.float64(num_classes - 1),
        )
        log_mass = quantized.log_prob(qs[:, None]).numpy()  # [n, K], exact
        log_pdf_bin = tfd.Logistic(mu, np.exp(log_s)).log_prob(x[:, None]).numpy() + math.log(2 * delta)
        interior = ((qs > 0) & (qs < num_classes - 1))[:, None]
        per_comp = np.where(interior & (log_mass <= math.log(1e-5)), log_pdf_bin, log_mass)
        log_pi = tf.nn.log_softmax(logits).numpy()
        want = tf.reduce_logsumexp(per_comp + log_pi, axis=-1).numpy()
        dist = DiscretizedMixLogistic(np.broadcast_to(params, x.shape + params.shape), num_classes, lsm)
        got = np.asarray(dist.log_prob(x))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=name)
        # Per component, wherever the fallback is not used, these are TFP's exact masses.
        exact = ~(interior & (log_mass <= math.log(1e-5)))
        assert exact.sum() >= 5
        got_comp = np.asarray(dist._component_log_probs(x))
        np.testing.assert_allclose(got_comp[exact], log_mass[exact], rtol=1e-9, atol=1e-9, err_msg=name)


# The doc's density fallback replaces interior bin masses under 1e-5 by pdf(centre) * 2 delta,
# which is ~0 for the neighbours of a component narrower than a bin: such a component
# can lose up to ~1e-5 of mass on each side (observed up to 8.6e-6). Cases marked
# `narrow` are checked to this bound; broad cases lose nothing measurable.
NARROW_ATOL = 3e-5


def _normalization_params(num_classes):
    """(name, params, narrow) cases; `narrow` when a component is narrower than a bin."""
    delta = 1.0 / (num_classes - 1)
    lsm = -14.0 if num_classes == N16 else -7.0
    return lsm, [
        ("broad", pack(np.zeros(1), np.array([0.1234]), np.array([-1.0])), False),
        ("edge-mass", pack(np.zeros(2), np.array([-1.2, 1.1]), np.array([-3.0, -2.0])), False),
        ("one-bin", pack(np.zeros(1), np.array([0.1234]), np.array([math.log(delta)])), True),
        ("floor", pack(np.zeros(1), np.array([-0.5 + 0.2 * delta]), np.array([lsm])), True),
        (
            "mixture",
            pack(np.array([0.0, 1.0, -1.0, 0.5]), np.array([-0.98, 0.0, 0.3, 0.99]), np.array([-3.0, math.log(3 * delta), lsm, -4.0])),
            True,
        ),
    ]


def _total_mass(num_classes, dtype, lsm, params):
    x = centres(num_classes, np.arange(num_classes)).astype(dtype)
    p = np.broadcast_to(params, (num_classes,) + params.shape).astype(dtype)
    log_p = DiscretizedMixLogistic(p, num_classes, lsm).log_prob(x)
    return np.exp(np.asarray(log_p, np.float64)).sum()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normalization_8bit(dtype):
    lsm, cases = _normalization_params(N8)
    for name, params, narrow in cases:
        total = _total_mass(N8, dtype, lsm, params)
        np.testing.assert_allclose(total, 1.0, atol=NARROW_ATOL if narrow else 1e-5, err_msg=name)


@pytest.mark.parametrize("dtype,atol", [("float64", 1e-8), ("float32", 1e-4)])
def test_normalization_16bit(dtype, atol):
    # float32: bin centres near +-1 are rounded by up to 3e-8 (0.2% of a half bin), so
    # adjacent bin edges no longer coincide and the masses do not telescope exactly
    # (observed up to 1.4e-5 for a component one bin wide).
    lsm, cases = _normalization_params(N16)
    for name, params, narrow in cases:
        total = _total_mass(N16, dtype, lsm, params)
        np.testing.assert_allclose(total, 1.0, atol=max(atol, NARROW_ATOL) if narrow else atol, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_finite_everywhere(dtype):
    lsm = -14.0
    d = 1.0 / (N16 - 1)
    xs = np.array([-1.5, -1.0 - d, -1.0, -1.0 + d, -1.0 + 2 * d, -0.3, 0.0, 1e-6, 1.0 - 2 * d, 1.0 - d, 1.0, 1.5])
    mus = np.array([-100.0, -1.0, -0.3, 0.0, 1.0, 100.0])
    log_ss = np.array([-30.0, lsm, -10.0, 0.0, 5.0, 30.0])
    xg, mg, lg = np.meshgrid(xs, mus, log_ss, indexing="ij")
    x = xg.reshape(-1)
    # Two components: the swept one plus a fixed broad one, with extreme logits too.
    params = np.stack(
        [np.full_like(x, 20.0), np.full_like(x, -20.0), mg.reshape(-1), np.zeros_like(x), lg.reshape(-1), np.zeros_like(x)],
        axis=-1,
    )
    x_t = tf.constant(x, dtype)
    p_t = tf.constant(params, dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x_t, p_t])
        lp = DiscretizedMixLogistic(p_t, N16, lsm).log_prob(x_t)
        total = tf.reduce_sum(lp)
    gx, gp = tape.gradient(total, [x_t, p_t])
    assert np.all(np.isfinite(lp.numpy()))
    assert np.all(np.isfinite(gx.numpy())), x[~np.isfinite(gx.numpy())]
    assert np.all(np.isfinite(gp.numpy()))
    # Single component at the extremes too (no mixing partner to dilute the gradient).
    with tf.GradientTape() as tape:
        tape.watch([x_t, p_t])
        lp1 = DiscretizedMixLogistic(tf.gather(p_t, [0, 2, 4], axis=-1), N16, lsm).log_prob(x_t)
    g1 = tape.gradient(lp1, [x_t, p_t])
    assert np.all(np.isfinite(lp1.numpy()))
    assert all(np.all(np.isfinite(g.numpy())) for g in g1)


def test_gradient_wrt_x_matches_finite_difference():
    """log_prob is smooth in continuous x (the distillation loss relies on it)."""
    params = pack(np.array([0.0, 0.4]), np.array([0.1, -0.2]), np.array([-4.0, -9.0]))
    x = tf.constant([0.05, 0.1 + 3e-5, -0.2 - 1e-4, 0.37], tf.float64)
    p = tf.constant(np.broadcast_to(params, (4, 6)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        lp = DiscretizedMixLogistic(p, N16).log_prob(x)
    g = tape.gradient(lp, x).numpy()
    h = 1e-8
    lp_plus = DiscretizedMixLogistic(p, N16).log_prob(x + h).numpy()
    lp_minus = DiscretizedMixLogistic(p, N16).log_prob(x - h).numpy()
    np.testing.assert_allclose(g, (lp_plus - lp_minus) / (2 * h), rtol=1e-4)


def test_log_scales_are_clamped_and_properties():
    params = pack(np.array([0.0, 1.0]), np.array([0.1, 0.2]), np.array([-30.0, -3.0]))
    dist = DiscretizedMixLogistic(params[None].astype("float32"), log_scale_min=-14.0)
    assert dist.num_components == 2
    assert dist.dtype == "float32"
    np.testing.assert_allclose(np.asarray(dist.log_scales), [[-14.0, -3.0]])
    np.testing.assert_allclose(np.asarray(dist.logits), [[0.0, 1.0]])
    np.testing.assert_allclose(np.asarray(dist.means), [[0.1, 0.2]], rtol=1e-6)
    half = DiscretizedMixLogistic(params[None].astype("float16"))
    assert half.dtype == "float32"
    assert num_params(10) == 30


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"params": np.zeros((2, 5))}, "multiple of 3"),
        ({"params": np.zeros((2, 0))}, "multiple of 3"),
        ({"params": np.zeros((2, 3)), "num_classes": 1}, "num_classes"),
        ({"params": np.zeros((2, 3)), "num_classes": 256.0}, "num_classes"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        DiscretizedMixLogistic(**kwargs)
    assert "Received:" in str(err.value)


def test_num_params_validation():
    with pytest.raises(ValueError, match="Received: num_components=0"):
        num_params(0)


def test_sample_single_component_moments():
    n = 200_000
    mu, s = 0.1, 0.01
    rng = np.random.default_rng(0)
    params = np.broadcast_to(pack(np.zeros(1), np.array([mu]), np.array([math.log(s)])), (n, 3)).astype("float32")
    dist = DiscretizedMixLogistic(params)
    x = np.asarray(dist.sample(rng.uniform(size=n), rng.uniform(size=n)), np.float64)
    assert x.shape == (n,)
    # Standard error of the mean is s*pi/sqrt(3n) ~ 4e-5; of the variance ~0.4% relative.
    np.testing.assert_allclose(x.mean(), mu, atol=2e-4)
    np.testing.assert_allclose(x.var(), s**2 * math.pi**2 / 3, rtol=0.03)


def test_sample_component_frequencies_and_range():
    n = 100_000
    rng = np.random.default_rng(1)
    pi = np.array([0.2, 0.5, 0.3])
    means = np.array([-0.5, 0.0, 0.95])
    params = pack(np.log(pi) + 1.7, means, np.log([0.01, 0.01, 0.2]))  # logits shift-invariant
    params = np.broadcast_to(params, (n, 9)).astype("float32")
    dist = DiscretizedMixLogistic(params)
    x = np.asarray(dist.sample(rng.uniform(size=n), rng.uniform(size=n)))
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.max() == 1.0  # the broad component near +1 gets clipped
    # Attribute each sample to a component from the outside: within 0.2 of a narrow
    # component's mean (20 scales), else the broad one.
    near_a = np.abs(x - means[0]) < 0.2
    near_b = np.abs(x - means[1]) < 0.2
    freq = np.array([near_a.mean(), near_b.mean(), 1 - near_a.mean() - near_b.mean()])
    # SE ~ sqrt(p(1-p)/n) <= 1.6e-3; the broad component leaks < 1e-3 into the others.
    np.testing.assert_allclose(freq, pi, atol=0.01)


def test_sample_is_deterministic_inverse_cdf():
    pi = np.array([0.2, 0.5, 0.3])
    params = pack(np.log(pi), np.array([-0.5, 0.0, 0.5]), np.full(3, -14.0))
    u_comp = np.array([0.0, 0.19, 0.21, 0.69, 0.71, 1.0])
    params = np.broadcast_to(params, (6, 9)).astype("float32")
    x = np.asarray(DiscretizedMixLogistic(params).sample(u_comp, np.full(6, 0.5)))
    np.testing.assert_allclose(x, [-0.5, -0.5, 0.0, 0.0, 0.5, 0.5], atol=1e-6)
    # Extreme uniforms are clipped to [eps, 1 - eps]: finite and in range.
    x = np.asarray(DiscretizedMixLogistic(params).sample(np.full(6, 0.5), np.array([0.0, 1.0, 0.0, 1.0, 1e-9, 0.5])))
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 1.0)


def test_sample_is_differentiable_wrt_params():
    params = tf.constant(pack(np.array([0.0, 0.0]), np.array([0.1, -0.1]), np.array([-3.0, -4.0]))[None])
    with tf.GradientTape() as tape:
        tape.watch(params)
        x = DiscretizedMixLogistic(params).sample(np.array([0.9]), np.array([0.7]))
    g = tape.gradient(x, params).numpy()
    assert np.all(np.isfinite(g)) and g[0, 3] == pytest.approx(1.0) and g[0, 2] == 0.0


def test_mean():
    logits = np.array([[0.0, 1.0, -1.0], [5.0, 0.0, 0.0]])
    means = np.array([[-0.5, 0.2, 0.9], [3.0, 2.0, 1.0]])
    params = pack(logits, means, np.full((2, 3), -3.0))
    pi = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    want = np.clip((pi * means).sum(-1), -1, 1)
    np.testing.assert_allclose(np.asarray(DiscretizedMixLogistic(params).mean()), want, rtol=1e-12)


def _well_fit(batch=2, t=50, k=3, seed=0):
    rng = np.random.default_rng(seed)
    audio = centres(N16, rng.integers(0, N16, size=(batch, t))).astype("float32")
    logits = np.zeros((batch, t, k))
    means = np.repeat(audio[..., None], k, -1) + rng.normal(scale=2e-6, size=(batch, t, k))
    log_s = np.full((batch, t, k), math.log(1.0 / N16))
    return audio, pack(logits, means, log_s).astype("float32")


def test_nll_of_well_fit_distribution_is_below_16_bits():
    audio, params = _well_fit()
    nll = float(mix_logistic_nll_loss(audio, params))
    assert 0.0 < nll < 16 * math.log(2)
    # A component about one bin wide centred on the sample (+-0.1 bin) scores ~1.1 bits.
    assert nll / math.log(2) < 2.0


def test_loss_class_matches_function_and_round_trips():
    audio, params = _well_fit()
    loss = DiscretizedMixLogisticLoss(num_classes=N16, log_scale_min=-12.0)
    want = float(mix_logistic_nll_loss(audio, params, log_scale_min=-12.0))
    np.testing.assert_allclose(float(loss(audio, params)), want, rtol=1e-6)
    np.testing.assert_allclose(float(loss(audio[..., None], params)), want, rtol=1e-6)

    config = loss.get_config()
    assert config["num_classes"] == N16 and config["log_scale_min"] == -12.0
    clone = DiscretizedMixLogisticLoss.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, DiscretizedMixLogisticLoss)
    assert restored.get_config() == config
    np.testing.assert_allclose(float(restored(audio, params)), want, rtol=1e-6)
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        DiscretizedMixLogisticLoss(num_classes=0)


def test_loss_trains_a_model_to_the_entropy_of_its_data():
    """A context-free mixture fitted to discretized N(128, 6) 8-bit data reaches that
    distribution's entropy (3.21 nats) and never beats the sample's empirical entropy."""
    rng = np.random.default_rng(0)
    q = np.clip(np.round(rng.normal(128, 6, size=(8, 16))), 0, 255).astype(int)
    audio = centres(N8, q).astype("float32")
    counts = np.bincount(q.ravel())
    p = counts[counts > 0] / counts.sum()
    empirical = float(-(p * np.log(p)).sum())
    truth = 0.5 * math.log(2 * math.pi * math.e * 36)  # 3.21 nats
    inputs = keras.Input((16, 1))
    model = keras.Model(inputs, keras.layers.Dense(num_params(2))(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=DiscretizedMixLogisticLoss(num_classes=N8, log_scale_min=-7.0))
    history = model.fit(np.zeros((8, 16, 1), "float32"), audio, epochs=300, batch_size=8,
                        verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert empirical - 1e-4 <= losses[-1] <= truth + 0.1, (empirical, losses[-1], truth)
    assert losses[0] > losses[-1] + 2.0


# --- log_density: the density the distillation KL scores draws with -------------------


def _mixture_logpdf(x, logits, means, scales):
    """Continuous logistic-mixture log density (float64 numpy)."""
    x = np.asarray(x, np.float64)[..., None]
    z = (x - means) / scales
    log_comp = -z - np.log(scales) - 2.0 * np.logaddexp(0.0, -z)
    log_w = logits - np.logaddexp.reduce(logits)
    return np.logaddexp.reduce(log_comp + log_w, axis=-1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_density_is_the_continuous_density_inside_at_and_beyond_both_edges(dtype):
    logits = np.array([0.3, -0.2, 0.0])
    means = np.array([-0.95, 0.1, 0.97])
    scales = np.array([0.05, 0.2, 0.03])  # all >> delta = 1.5e-5
    x = np.array([-1.5, -1.05, -1.01, -1.0, -1.0 + 1e-5, -0.9, 0.0, 0.5, 0.99, 1.0 - 1e-5,
                  1.0, 1.01, 1.2])
    params = np.broadcast_to(pack(logits, means, np.log(scales)), (len(x), 9)).astype(dtype)
    got = keras.ops.convert_to_numpy(
        DiscretizedMixLogistic(params).log_density(x.astype(dtype)))
    want = _mixture_logpdf(x, logits, means, scales)
    # (delta / s)^2 / 6 < 1e-7 relative for s >= 0.03; float32 bin masses: ~1e-5.
    np.testing.assert_allclose(got, want, atol=2e-4 if dtype == "float32" else 1e-7)


def test_log_density_is_not_the_edge_bins_tail_mass():
    """The issue's example: x = -1.01, mu = 0, s = 0.3."""
    params = np.array([pack(np.zeros(1), np.zeros(1), np.log([0.3]))], "float64")
    dist = DiscretizedMixLogistic(params)
    x = np.array([-1.01])
    tail = float(keras.ops.convert_to_numpy(dist.log_prob(x))[0] - math.log(2 * dist.delta))
    density = float(keras.ops.convert_to_numpy(dist.log_density(x))[0])
    assert tail == pytest.approx(7.0, abs=0.1)  # what the KL used to score: not a density
    assert density == pytest.approx(float(_mixture_logpdf(x, np.zeros(1), np.zeros(1),
                                                          np.array([0.3]))[0]), abs=1e-7)
    assert density == pytest.approx(-2.2, abs=0.05)


def test_log_density_is_bounded_and_integrates_to_one():
    """A component much narrower than a bin: the density is capped at 1 / (2 delta)."""
    n = 256
    delta = 1.0 / (n - 1)
    params = pack(np.array([0.0, 0.0]), np.array([0.999, -0.3]), np.log([1e-6, 0.2]))
    x = np.linspace(-4.0, 4.0, 400001)
    dist = DiscretizedMixLogistic(np.broadcast_to(params, (len(x), 6)), num_classes=n)
    log_p = keras.ops.convert_to_numpy(dist.log_density(x))
    assert np.all(np.isfinite(log_p))
    assert log_p.max() <= -math.log(2 * delta) + 1e-9
    # The box edges of the narrow component are jumps of ~64: the trapezoid rule's error
    # there is ~6e-4 on this grid. (The edge bins' tail mass instead integrates to ~4/delta.)
    np.testing.assert_allclose(np.trapz(np.exp(log_p), x), 1.0, atol=2e-3)


def test_log_density_broadcasts_draws_against_parameters():
    rng = np.random.default_rng(0)
    params = rng.normal(size=(2, 5, 9)) * 0.3
    draws = rng.normal(size=(4, 2, 5)) * 0.5
    dist = DiscretizedMixLogistic(params)
    got = keras.ops.convert_to_numpy(dist.log_density(draws))
    tiled = DiscretizedMixLogistic(np.broadcast_to(params, (4, 2, 5, 9)))
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(tiled.log_density(draws)),
                               rtol=1e-12)
