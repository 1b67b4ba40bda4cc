"""A causal high-pass with a unit first tap: a volume-preserving last step of an IAF.

y_t = x_t + shift_t,   shift_t = sum_{k=1}^{K-1} h_k x_{t-k}

with h the impulse response of a second-order Butterworth high-pass at `cutoff` (cycles
per sample), divided by its first value so that h_0 = 1, and truncated to K = `taps`
(the response decays as exp(-2 pi cutoff k / sqrt 2): at 60 Hz and 22,050 Hz it is below
1e-5 of h_0 after 1,000 samples). Because shift_t depends on x_<t only, the step is an
autoregressive shift: the Jacobian dy/dx is lower triangular with a unit diagonal (log
det 0), and if x_t ~ Logistic(mu_t, s_t) given the noise before t, then y_t ~
Logistic(mu_t + shift_t, s_t): an IAF student's `mu_tot` moves by `shift`, its `log_s_tot`
stays. It removes a DC offset and sub-cutoff drift (the bundled student's came from its
teacher, whose own samples are +45 dB over the real audio below 20 Hz) at -0.5 dB at
100 Hz for a 60 Hz cutoff, and the division by h_0 (b0 of the filter, just below 1) lifts
every frequency by -20 log10(b0) dB (0.1 dB at 60 Hz and 22,050 Hz).

Streaming: `shift(x, history)` takes the K - 1 samples before x (zeros at the start), and
`history(x, history)` gives the next call's, so chunk by chunk equals one pass.

The shift is computed as a block-Toeplitz product, not as a 1-channel convolution of K - 1
taps: the padded signal is cut into blocks of `block` samples, and each output block is one
`[(n + 1) block] x [block]` matrix product of its own and its n = ceil((K - 1) / block)
preceding input blocks. That is (n + 1) block multiply-adds per sample instead of K - 1
(1,280 against 1,023 at the defaults) but in a dense matrix product, which CPUs and GPUs run
near their peak, where a convolution with one input and one output channel runs far below it
(on 2 CPU cores, forward and backward of [4, 4,096]: see `benchmarks/distill_step_parts.py`).
"""

import math

import keras
import numpy as np
from keras import ops


def butterworth_highpass_taps(cutoff, taps):
    """The first `taps` values of the impulse response of a 2nd-order Butterworth high-pass
    at `cutoff` cycles/sample (bilinear transform), divided by the first one."""
    k = math.tan(math.pi * cutoff)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b = (norm, -2.0 * norm, norm)
    a1, a2 = 2.0 * (k * k - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k * k) * norm
    h = np.zeros(taps)
    x1 = x2 = y1 = y2 = 0.0
    for n in range(taps):
        x0 = 1.0 if n == 0 else 0.0
        y0 = b[0] * x0 + b[1] * x1 + b[2] * x2 - a1 * y1 - a2 * y2
        h[n] = y0
        x2, x1, y2, y1 = x1, x0, y1, y0
    return h / h[0]


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class CausalHighpass(keras.layers.Layer):
    """The unit-first-tap causal high-pass of the module docstring (no weights).

    Args:
        cutoff: cutoff frequency in cycles per sample, in (0, 0.5).
        taps: FIR length K (>= 2).
        block: samples per block of the block-Toeplitz product (>= 1; the module docstring).
    """

    def __init__(self, cutoff, taps=1024, block=256, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < cutoff < 0.5:
            raise ValueError(f"`cutoff` must be in (0, 0.5) cycles per sample. Received: "
                             f"cutoff={cutoff}")
        if int(taps) < 2:
            raise ValueError(f"`taps` must be >= 2. Received: taps={taps}")
        if int(block) < 1:
            raise ValueError(f"`block` must be >= 1. Received: block={block}")
        self.cutoff = float(cutoff)
        self.taps = int(taps)
        self.block = int(block)
        h = butterworth_highpass_taps(self.cutoff, self.taps)
        self._context_blocks = -(-(self.taps - 1) // self.block)
        # kernel[r, p]: the weight of the frame's input sample r in output sample p of the
        # block, h_k at lag k = p + n * block - r for 1 <= k <= K - 1, else 0.
        n, b = self._context_blocks, self.block
        lag = np.arange(b)[None, :] + n * b - np.arange((n + 1) * b)[:, None]
        padded_h = np.concatenate([h, np.zeros(1)])  # index K (out of range) holds 0
        index = np.where((lag >= 1) & (lag <= self.taps - 1), lag, self.taps)
        self._kernel = padded_h[index].astype("float32")

    @property
    def history_length(self):
        return self.taps - 1

    def _padded(self, x, history):
        x = ops.cast(x, "float32")
        if history is None:  # zeros before the start (also with an unknown batch size)
            return ops.pad(x, [[0, 0], [self.history_length, 0]])
        return ops.concatenate([ops.cast(history, "float32"), x], axis=1)

    def shift(self, x, history=None):
        """`sum_{k>=1} h_k x_{t-k}` `[batch, T]` float32 for `x` `[batch, T]`, with the
        `K - 1` samples before it in `history` (None: zeros)."""
        n, b = self._context_blocks, self.block
        length = ops.shape(x)[1]
        blocks = (length + b - 1) // b
        # [zeros | K - 1 samples of history | x | zeros], n + blocks whole blocks long.
        padded = ops.pad(self._padded(x, history),
                         [[0, 0], [n * b - self.history_length, blocks * b - length]])
        padded = ops.reshape(padded, (-1, n + blocks, b))
        frames = ops.concatenate([padded[:, i:i + blocks] for i in range(n + 1)], axis=-1)
        shift = ops.matmul(frames, ops.convert_to_tensor(self._kernel))
        return ops.reshape(shift, (-1, blocks * b))[:, :length]

    def history(self, x, history=None):
        """The last `K - 1` samples of `history` followed by `x` (the next chunk's)."""
        padded = self._padded(x, history)
        return padded[:, ops.shape(padded)[1] - self.history_length:]

    def call(self, x, shift_only=False):
        """`x + shift(x)`, or `shift(x)` alone with `shift_only` (zero history).

        Call the layer rather than `shift` on symbolic inputs (a functional model's
        `keras.Input`): the block count needs the length, which only the traced call has.
        """
        if shift_only:
            return self.shift(x)
        return ops.cast(x, "float32") + self.shift(x)

    def get_config(self):
        config = super().get_config()
        config.update({"cutoff": self.cutoff, "taps": self.taps, "block": self.block})
        return config
