"""How much each distillation loss term pulls on the student: per-term gradient norms.

The distillation objective is a weighted sum (KL, power, spectral, perceptual,
contrastive, and with a discriminator the adversarial and feature-matching terms). Which term drives training is decided by the size of each weighted term's
*gradient*, not by its value: a term can be small and still dominate. For every active
term this computes

    || d (weight_term * term) / d theta ||_2     (global norm over the student's weights)

on one batch with fixed noise and Monte Carlo draws, so the figures are comparable across
checkpoints. Measured on the `ljspeech_mini` preset at step 4,500 with the weights it had
then (power 100, spectral 10): power 3,700, spectral 106, KL 91, contrastive 22: the
time-averaged power loss was more than 30 times stronger than everything else, which is why
the preset's config now weighs the frame-level spectral term up and the power term down.

This is a TensorFlow edge (it needs `tf.GradientTape`); the model math stays in
`keras.ops`.
"""

import tensorflow as tf

__all__ = ["term_gradient_norms", "terms_with_gradient_norms", "WEIGHTED_TERMS"]

# The terms of `Distiller.total_loss` and the attribute holding each one's weight.
WEIGHTED_TERMS = {
    "kl": "kl_weight",
    "power": "power_weight",
    "spectral": "spectral_weight",
    "ltas": "ltas_weight",
    "perceptual": "perceptual_weight",
    "contrastive": "contrastive_weight",
    # GAN-augmented distillation (measured also before `adversarial_start_step`).
    "adversarial": "adversarial_weight",
    "feature_matching": "feature_matching_weight",
}


def term_gradient_norms(distiller, batch, noise_seed=1234, kl_seed=1235):
    """`{term: global gradient norm of weight * term}` over the student's trainable weights.

    Args:
        distiller: a `Distiller`.
        batch: a dict batch (`"audio"`, `"features"`, optionally `"speaker_id"`).
        noise_seed, kl_seed: fixed seeds of the student's noise and the KL draws.

    Terms with weight 0 are left out.
    """
    return terms_with_gradient_norms(distiller, batch, noise_seed, kl_seed)[2]


def terms_with_gradient_norms(distiller, batch, noise_seed=1234, kl_seed=1235):
    """`(student output, loss terms, gradient norms)` from ONE pass of student and teacher.

    For callers that report the terms as well (the fixed-batch evaluator), so that the
    forward passes are not run twice. See `term_gradient_norms` for the arguments.
    """
    variables = distiller.student.trainable_variables
    if not variables:
        raise ValueError("The distiller's student has no trainable weights to measure.")
    with tf.GradientTape(persistent=True) as tape:
        out = distiller(batch, training=True, noise_seed=noise_seed)
        terms = distiller.loss_terms(batch, out, kl_seed=kl_seed)
        if getattr(distiller, "adversarial", False):
            terms.update(distiller.adversarial_terms(batch, out))
    norms = {}
    for name, weight_attr in WEIGHTED_TERMS.items():
        weight = float(getattr(distiller, weight_attr, 0.0))
        if weight <= 0 or name not in terms:
            continue
        grads = [g for g in tape.gradient(terms[name], variables) if g is not None]
        norms[name] = weight * float(tf.linalg.global_norm(grads)) if grads else 0.0
    del tape
    return out, terms, norms
