"""Least-squares GAN losses and feature matching (Parallel WaveGAN, HiFi-GAN).

With D's per-timestep logits on real audio y and on generated audio x:

    discriminator  L_D  = mean((D(y) - 1)^2) + mean(D(x)^2)
    generator      L_G  = mean((D(x) - 1)^2)
    feature match  L_FM = 1/L * sum_l mean |F_l(y) - F_l(x)|

F_l the discriminator's l-th hidden feature map. The least-squares form (Mao et al. 2017)
does not saturate: a confident discriminator still gives the generator gradients.

Every function also takes lists (one entry per sub-discriminator, as in HiFi-GAN's
multi-period discriminator): the GAN losses are then averaged over the sub-discriminators,
and feature matching over all their layers. Half-precision inputs are computed in float32.
Pure `keras.ops`; no gradient is stopped here (the caller decides which variables a loss
updates).
"""

from keras import ops

__all__ = ["discriminator_loss", "generator_loss", "feature_matching_loss"]


def _float32(x):
    x = ops.convert_to_tensor(x)
    return ops.cast(x, "float32") if x.dtype in ("float16", "bfloat16") else x


def _as_list(x, what):
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    if not items:
        raise ValueError(f"`{what}` is empty. Received: {what}={x!r}")
    return items


def discriminator_loss(real_logits, fake_logits):
    """`mean((D(real) - 1)^2) + mean(D(fake)^2)` (averaged over sub-discriminators)."""
    real = _as_list(real_logits, "real_logits")
    fake = _as_list(fake_logits, "fake_logits")
    if len(real) != len(fake):
        raise ValueError(
            f"`real_logits` and `fake_logits` must come from the same discriminators. "
            f"Received: {len(real)} vs {len(fake)} outputs"
        )
    total = 0.0
    for r, f in zip(real, fake):
        r, f = _float32(r), _float32(f)
        total = total + ops.mean(ops.square(r - 1.0)) + ops.mean(ops.square(f))
    return total / len(real)


def generator_loss(fake_logits):
    """`mean((D(fake) - 1)^2)` (averaged over sub-discriminators)."""
    fake = _as_list(fake_logits, "fake_logits")
    total = 0.0
    for f in fake:
        total = total + ops.mean(ops.square(_float32(f) - 1.0))
    return total / len(fake)


def _flatten(features):
    out = []
    for f in features:
        if isinstance(f, (list, tuple)):
            out += _flatten(f)
        else:
            out.append(f)
    return out


def feature_matching_loss(real_features, fake_features):
    """Mean over feature maps of `mean |F(real) - F(fake)|`.

    `real_features`, `fake_features`: the discriminator's feature maps on real and
    generated audio (a list, or a list of lists for several sub-discriminators).
    """
    real = _flatten(_as_list(real_features, "real_features"))
    fake = _flatten(_as_list(fake_features, "fake_features"))
    if len(real) != len(fake) or not real:
        raise ValueError(
            f"`real_features` and `fake_features` must hold the same, non-zero number of "
            f"feature maps. Received: {len(real)} vs {len(fake)}"
        )
    total = 0.0
    for r, f in zip(real, fake):
        if tuple(r.shape) != tuple(f.shape):
            raise ValueError(
                f"Feature maps of real and fake audio differ in shape. Received: "
                f"{tuple(r.shape)} vs {tuple(f.shape)}"
            )
        total = total + ops.mean(ops.abs(_float32(r) - _float32(f)))
    return total / len(real)
