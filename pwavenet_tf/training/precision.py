"""Mixed precision for training: `--mixed-precision {off,bfloat16,float16}`.

- `bfloat16` (`mixed_bfloat16`): products in bfloat16, variables and the numerically
  sensitive parts in float32. For CPUs with AVX512-BF16/AMX, TPUs and Ampere or newer
  GPUs. No loss scaling is needed (bfloat16 has float32's exponent range).
- `float16` (`mixed_float16`): for Volta/Turing GPUs; Keras wraps the optimizer in a
  `LossScaleOptimizer` (dynamic loss scaling) at compile time.

What stays float32 under both (tested): the mixture-of-logistics parameters and
log-probabilities, the KL and entropy terms, the flows' running log-scale and
mu_tot/s_tot, the STFTs and every loss.

On hardware without the format's arithmetic the products are emulated and much slower, not
faster: on an AMD EPYC (Zen 3, AVX2, no AVX512-BF16) the distillation step's student
forward + backward took 4.40 s under bfloat16 against 0.73 s in float32, the teacher's
forward + input gradient 1.68 s against 0.33 s (`benchmarks/distill_step_parts.py
--mixed-precision`); the whole teacher step (`pwavenet bench --config ljspeech_mini --phase
train --stage teacher`) took 0.62 s in float32, 3.42 s in bfloat16 and 14.9 s in float16.
`precision_warning` names these cases, and the training commands print it.
"""


_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

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


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU feature flags Linux reports (a set; None where the file cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def precision_warning(precision, accelerators=None, flags=None):
    """A one-line warning when `precision` has no native arithmetic here, else None.

    Args:
        precision: `off`, `bfloat16` or `float16` (or the boolean form).
        accelerators: whether a GPU or TPU is visible (None: ask TensorFlow).
        flags: the CPU's feature flags (None: `cpu_flags()`; unknown flags warn nothing).
    """
    precision = precision_name(precision)
    if precision == "off":
        return None
    if accelerators is None:
        import tensorflow as tf

        accelerators = bool(tf.config.list_physical_devices("GPU")
                            or tf.config.list_logical_devices("TPU"))
    if accelerators:
        return None
    if precision == "float16":
        return ("--mixed-precision float16 without a GPU: CPUs have no float16 matrix "
                "products, so TensorFlow emulates them and the steps run many times slower than in "
                "float32. Use it on Volta/Turing GPUs; on this machine train in float32.")
    flags = cpu_flags() if flags is None else set(flags)
    if flags is None or any(f in flags for f in _CPU_BF16_FLAGS):
        return None
    return ("--mixed-precision bfloat16 on a CPU without AVX512-BF16 or AMX (no "
            f"{' / '.join(_CPU_BF16_FLAGS)} in /proc/cpuinfo): its products are emulated and "
            "the steps run several times slower than in float32. Train in float32 here.")


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
