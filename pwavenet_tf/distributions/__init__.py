"""Output distributions of the WaveNet teacher (written with `keras.ops`).

- `DiscretizedMixLogistic`: 16-bit (or 8-bit) discretized mixture of logistics, the
  Parallel WaveNet teacher output; `log_prob` also accepts continuous audio and is
  differentiable in it, as probability density distillation needs.
- `CategoricalMuLaw`: the original WaveNet's 256-way mu-law softmax.

Each comes with a functional loss and a serializable `keras.losses.Loss`.
"""

from pwavenet_tf.distributions.categorical_mu_law import (
    CategoricalMuLaw,
    CategoricalMuLawLoss,
    mu_law_nll_loss,
)
from pwavenet_tf.distributions.discretized_mix_logistic import (
    DiscretizedMixLogistic,
    DiscretizedMixLogisticLoss,
    mix_logistic_nll_loss,
    num_params,
)

__all__ = [
    "CategoricalMuLaw",
    "CategoricalMuLawLoss",
    "DiscretizedMixLogistic",
    "DiscretizedMixLogisticLoss",
    "mix_logistic_nll_loss",
    "mu_law_nll_loss",
    "num_params",
]
