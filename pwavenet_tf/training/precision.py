"""Mixed precision for training: `--mixed-precision {off,bfloat16,float16}`.

- `bfloat16` (`mixed_bfloat16`): products in bfloat16, variables and the numerically
  sensitive parts in float32. For CPUs with AVX512-BF16/AMX, TPUs and Ampere or newer
  GPUs. No loss scaling is needed (bfloat16 has float32's exponent range).
- `float16` (`mixed_float16`): for Volta/Turing GPUs; Keras wraps the optimizer in a
  `LossScaleOptimizer` (dynamic loss scaling) at compile time.

What stays float32 under both (tested): the mixture-of-logistics parameters and
log-probabilities, the KL and entropy terms, the flows' running log-scale and
mu_tot/s_tot, the STFTs and every loss.
"""

PRECISIONS = ("off", "bfloat16", "float16")
_POLICIES = {"off": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def precision_name(value):
    """`off`, `bfloat16` or `float16` from a name or the older boolean form (True: float16)."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "float16"
    if value not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {', '.join(PRECISIONS)}. "
                         f"Received: mixed_precision={value!r}")
    return value


def dtype_policy(value):
    """The Keras dtype policy name of a precision (None for float32)."""
    return _POLICIES[precision_name(value)]


def inner_optimizer(optimizer):
    """The optimizer that holds the slots (unwraps a `LossScaleOptimizer`)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def check_xla_precision(precision, jit_compile):
    """Refuses bfloat16 with XLA where XLA would fail: its CPU backend has no bfloat16
    matrix product ("unsupported operand type BF16 in op dot" at the first step)."""
    if not jit_compile or precision_name(precision) != "bfloat16":
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return
    raise ValueError(
        "--jit-compile with --mixed-precision bfloat16 needs a GPU or TPU: XLA on the CPU "
        "has no bfloat16 matrix product. Drop --jit-compile (on this CPU graph mode is "
        "faster anyway) or train in float32.")
