"""Multiply-adds per output sample of the teacher and the student, from the layer shapes.

What is counted: the multiply-adds (MACs) of every matrix product and convolution, read off
the shapes of the built layers' kernels. One MAC is one multiply and one add, i.e. 2
FLOPs; `flops = 2 * macs`. Not counted: biases, activations (tanh, sigmoid, relu, leaky
relu, softplus), the gate's elementwise product, residual additions and scalings, the
sampling of the output distribution and the flows' `x * s + mu` updates. They are
O(channels) per sample against O(channels^2) for the products, a few percent at most.

Teacher, per generated sample (one step of cached generation, `WaveNetTeacher.step`):
- `input_proj`: in_features x residual (kernel 1; in_features = 2 with mu-law input);
- every residual block: the dilated convolution k x residual x gate, the conditioning
  projection cond_channels x gate, the global (speaker) projection speaker x gate when
  the model is multi-speaker (`step` recomputes it every step), the residual projection
  gate/2 x residual (absent from the last block, whose residual output is unused) and
  the skip projection gate/2 x skip;
- the head: skip x skip (`head_hidden`) and skip x params (`head_params`);
- the conditioning upsampler, amortised per sample: the pre-convolution
  (pre_k x features x channels per frame) and each transposed convolution
  (channels x f*channels per input row, one row per frame times the earlier factors),
  divided by the hop length.

The naive generator recomputes the teacher-forced pass of the stack and the head over a
window of up to `receptive_field + 1` samples at every step (the conditioning is
upsampled once); `teacher_macs_per_sample(..., naive_window=W)` counts W positions.

Student, per generated sample: the shared upsampler (amortised as above) plus, for every
flow, `input_proj` (1 x channels), every block's dilated convolution, conditioning
projection and residual projection (no skip), and `output_proj` (channels x 2). The
speaker projection of a multi-speaker student is computed once per utterance in the
parallel pass and is not counted.
"""

import math


def _kernel_macs(kernel):
    """MACs of one output position of a Dense/conv kernel: the product of its shape."""
    return int(math.prod(int(d) for d in kernel.shape))


def _check_built(model, what):
    if not model.built or not getattr(model.upsampler, "upsample_kernels", None):
        raise ValueError(f"The {what} must be built (construct it from a config). "
                         f"Received: {model!r}")


def upsampler_macs_per_sample(upsampler):
    """MACs per output sample of a `ConditioningUpsampler`, amortised over the hop.

    Per frame: the pre-convolution (its kernel `[pre_k, features, channels]`), then the
    transposed convolution of factor f_i (kernel `[channels, f_i * channels]`) applied to
    prod(f_1..f_{i-1}) rows. Divided by hop = prod(f) samples per frame.
    """
    per_frame = _kernel_macs(upsampler.pre_conv.kernel)
    rows = 1
    for kernel, f in zip(upsampler.upsample_kernels, upsampler.upsample_factors):
        per_frame += rows * _kernel_macs(kernel)
        rows *= f
    return per_frame / upsampler.hop_length


def residual_block_macs(block, global_conditioning=False):
    """MACs of one `ResidualBlock` at one timestep, as a dict by sub-layer."""
    out = {
        "dilated_conv": _kernel_macs(block.conv.kernel),
        "conditioning_proj": _kernel_macs(block.conditioning_proj.kernel),
    }
    if block.residual_proj is not None:  # the teacher's last block has none
        out["residual_proj"] = _kernel_macs(block.residual_proj.kernel)
    if block.skip_proj is not None:
        out["skip_proj"] = _kernel_macs(block.skip_proj.kernel)
    if global_conditioning and block.global_proj is not None:
        out["global_proj"] = _kernel_macs(block.global_proj.kernel)
    return out


def _add(total, parts):
    for k, v in parts.items():
        total[k] = total.get(k, 0) + v
    return total


def teacher_macs_per_sample(teacher, naive_window=1):
    """Multiply-adds per generated sample of a built `WaveNetTeacher`.

    Args:
        teacher: a built `WaveNetTeacher`.
        naive_window: positions of the stack and head computed per output sample: 1 for
            cached generation, up to `receptive_field + 1` for naive generation.

    Returns:
        A dict: `total` (MACs per sample), `flops` (2 * total), `breakdown` (MACs per
        sample by component: input_proj, dilated_conv, conditioning_proj, global_proj,
        residual_proj, skip_proj, head, upsampler), `per_step_stack` (the stack and head
        at one position) and `naive_window`.
    """
    _check_built(teacher, "teacher")
    if naive_window < 1:
        raise ValueError(f"`naive_window` must be >= 1. Received: naive_window={naive_window}")
    parts = {"input_proj": _kernel_macs(teacher.input_proj.kernel)}
    for block in teacher.blocks:
        _add(parts, residual_block_macs(block, global_conditioning=teacher.multi_speaker))
    parts["head"] = (_kernel_macs(teacher.head_hidden.kernel)
                     + _kernel_macs(teacher.head_params.kernel))
    stack = sum(parts.values())
    breakdown = {k: v * naive_window for k, v in parts.items()}
    breakdown["upsampler"] = upsampler_macs_per_sample(teacher.upsampler)
    total = sum(breakdown.values())
    return {"total": total, "flops": 2 * total, "breakdown": breakdown,
            "per_step_stack": stack, "naive_window": naive_window}


def naive_mean_window(teacher, num_samples):
    """Mean window of the naive generator over its first `num_samples` steps.

    Step t recomputes positions max(0, t - R) .. t (R = receptive field): t + 1 positions
    while t < R, then R + 1.
    """
    rf = teacher.receptive_field
    n = int(num_samples)
    if n < 1:
        raise ValueError(f"`num_samples` must be >= 1. Received: num_samples={num_samples}")
    ramp = min(n, rf)
    positions = ramp * (ramp + 1) // 2 + (n - ramp) * (rf + 1)
    return positions / n


def flow_macs(flow):
    """MACs of one `IAFFlow` at one timestep, as a dict by sub-layer."""
    parts = {"input_proj": _kernel_macs(flow.input_proj.kernel)}
    for block in flow.blocks:
        _add(parts, residual_block_macs(block, global_conditioning=False))
    parts["output_proj"] = _kernel_macs(flow.output_proj.kernel)
    return parts


def student_macs_per_sample(student):
    """Multiply-adds per generated sample of a built `IAFStudent` (all flows).

    Returns:
        A dict: `total`, `flops`, `breakdown` (by component, summed over flows, plus
        `upsampler`) and `per_flow` (the total of each flow).
    """
    _check_built(student, "student")
    breakdown = {}
    per_flow = []
    for flow in student.flows:
        parts = flow_macs(flow)
        per_flow.append(sum(parts.values()))
        _add(breakdown, parts)
    breakdown["upsampler"] = upsampler_macs_per_sample(student.upsampler)
    total = sum(breakdown.values())
    return {"total": total, "flops": 2 * total, "breakdown": breakdown, "per_flow": per_flow}


def macs_per_sample(model, **kwargs):
    """`teacher_macs_per_sample` or `student_macs_per_sample`, by the model's type."""
    from pwavenet_tf.models.iaf_student import IAFStudent
    from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher

    if isinstance(model, WaveNetTeacher):
        return teacher_macs_per_sample(model, **kwargs)
    if isinstance(model, IAFStudent):
        return student_macs_per_sample(model)
    raise ValueError(f"Expected a WaveNetTeacher or an IAFStudent. Received: {type(model)}")
