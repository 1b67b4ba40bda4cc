"""Inference precision of the student: `--precision {float32,bfloat16}`.

`bfloat16` runs the student under Keras' `mixed_bfloat16` dtype policy, the policy that
distillation trains with (`pwavenet_tf.training.precision`): the variables stay float32,
the convolutions and matmuls of the upsampler and the flows run in bfloat16. Each flow's
`mu` and `log_s` come out of a float32 output projection, and the running sample
`x = x * exp(log_s) + mu` with `mu_tot` / `log_s_tot` is float32
(`IAFStudent.forward_from_conditioning`, `student_synthesis.synthesize_window`), so the
audio is float32. For CPUs with AVX512-BF16/AMX, TPUs and Ampere or newer GPUs; elsewhere
bfloat16 is emulated and slower than float32.

The teacher is not converted: its autoregressive sampling is float32 only here.
"""

from pwavenet_tf.training.precision import dtype_policy

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision):
    """`precision` if it is one of `PRECISIONS`, else a ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}. "
                         f"Received: precision={precision!r}")
    return precision


def student_precision(student):
    """`float32` or `bfloat16`: the compute dtype of a student's flows."""
    return "bfloat16" if student.flows[0].compute_dtype == "bfloat16" else "float32"


def student_with_precision(student, precision="float32"):
    """The IAF `student` running in `precision` (`float32` or `bfloat16`).

    Returns `student` itself when it already runs in `precision`; otherwise a new
    `IAFStudent` of the same config built under the precision's dtype policy
    (`mixed_bfloat16` for bfloat16) holding a copy of `student`'s weights (float32
    variables in both). `student` is left unchanged.
    """
    from pwavenet_tf.models.iaf_student import IAFStudent

    check_precision(precision)
    if not isinstance(student, IAFStudent):
        raise ValueError("`student` must be an IAFStudent (`--precision` applies to the "
                         f"student only). Received: student={type(student).__name__}")
    if student_precision(student) == precision:
        return student
    policy = dtype_policy("off" if precision == "float32" else precision)
    config = dict(student.get_config())
    if policy:
        config["dtype"] = policy
    converted = IAFStudent.from_config(config)
    source, target = student.weights, converted.weights
    if [(w.path, tuple(w.shape)) for w in source] != [(w.path, tuple(w.shape))
                                                     for w in target]:
        raise ValueError("The student rebuilt for precision "
                         f"{precision} does not have the same variables as the original.")
    for dst, src in zip(target, source):
        dst.assign(src.value)
    return converted
