"""How much memory one training step needs, checked before the first step.

A batch that cannot fit (`--batch-size 20000`) used to run until the machine was out of
memory. `check_step_memory` estimates the step from the config alone (nothing is
allocated) and refuses with a one-line `ValueError` naming the estimate and the memory
available, which the CLI prints with exit code 2.

The estimate counts the activations of one example's forward pass, value by value, from
the shapes of the layers (T = window_samples):

- Teacher (`WaveNetTeacher`, `ResidualBlock`; R residual, G gate, S skip channels, K
  mixtures, C conditioning channels):
  upsampled conditioning `2 T C`; input transform and projection `T (2 + R)`; per block
  the dilated conv output, the conditioning projection and their sum `3 T G`, tanh,
  sigmoid and their product `1.5 T G`, the residual projection, the residual sum and the
  padded conv input `4 T R`, the skip projection and the running skip sum `2 T S`; the
  head `3 T S + 3 T K`; the MoL loss's per-component terms `12 T K`.
- Distillation step: the student (`IAFFlow`: a block is the teacher's with R = channels,
  G = 2 channels, S = 0, plus its input projection, `Dense(2)` and the running affine
  update `6 T` per flow, and the shared upsampled conditioning `2 T C`), one teacher pass
  on the student's sample (as above, without the MoL loss), the KL's M draws scored
  against the teacher's mixture: `[M, T, K]` component terms (`10 M T K`) and `[M, T]`
  draws and densities (`4 M T`). The contrastive term doubles the teacher pass and the
  draws; the power and spectral losses add `8 T` per FFT size (`16 T` for the spectral
  loss, which transforms the real audio too); a discriminator adds `6 T` per layer-channel
  (real and student audio).

Values are 4 bytes (float32); with `mixed_precision` the network activations are 2 bytes
while the distribution parameters and loss terms stay float32. This counts every op's
output, but TensorFlow keeps only part of them for the backward pass (what the gradients
need: the gate's tanh and sigmoid, the residual stream, ...) and frees the rest as it
goes, while the gradients add tensors of the same shapes one layer at a time. The net
peak, measured, is a third to two fifths of the count, so the count is multiplied by
`STEP_FACTOR` (0.45: the largest measured ratio plus a tenth), not by the 2-3x one might
expect for autodiff.

Calibration: peak RSS of one training step (run twice) at two batch sizes, each in its
own subprocess after a batch-1 step has traced the graph (`resource.getrusage(
RUSAGE_SELF).ru_maxrss`); the slope between the two batch sizes is the step's bytes per
example (the model, the graph and TensorFlow itself cancel). CPU, float32, TF 2.17 /
Keras 3.8, random weights and inputs of the config's shapes:

    step (batches)                  ops' outputs counted   measured / example   estimate
    teacher tiny, T 2048 (16, 64)        21.0 MB               8.6 MB (0.41)      9.4 MB
    teacher ljspeech_mini, 4096 (4, 16)   185 MB                61 MB (0.33)       83 MB
    distill tiny, T 2048 (4, 16)         44.5 MB              16.3 MB (0.37)      20.0 MB
    distill ljspeech_mini, 4096 (2, 8)    645 MB               200 MB (0.31)       290 MB

The check refuses only a step whose estimate exceeds the memory available
(MemAvailable of /proc/meminfo, else the physical memory), so batches near the limit may
still try; it is meant to stop a batch that cannot fit by far, before anything is
allocated, not to predict the last megabyte.
"""

import dataclasses
import math
import os

STEP_FACTOR = 0.45
FLOAT32 = 4
HALF = 2
GB = 1e9


@dataclasses.dataclass(frozen=True)
class Values:
    """Activation values of one example: `network` ones (half under mixed precision) and
    `float32` ones (distribution parameters and loss terms, float32 always)."""

    network: float = 0.0
    float32: float = 0.0

    def __add__(self, other):
        return Values(self.network + other.network, self.float32 + other.float32)

    def __mul__(self, k):
        return Values(self.network * k, self.float32 * k)

    def bytes(self, mixed_precision="off"):
        half = mixed_precision not in (None, False, "off", "float32")
        return self.network * (HALF if half else FLOAT32) + self.float32 * FLOAT32


def block_values(t, residual, gate, skip):
    """One gated residual block's activations over `t` timesteps."""
    return Values(network=t * (3 * gate + 1.5 * gate + 4 * residual + 2 * skip))


def teacher_values(teacher, t, with_loss=True):
    """The teacher's teacher-forced pass over `t` samples (`teacher`: a TeacherConfig)."""
    r, g, s = teacher.residual_channels, teacher.gate_channels, teacher.skip_channels
    params = (3 * teacher.num_mixtures if teacher.output_distribution == "mixture_of_logistics"
              else teacher.mu_law_channels)
    v = Values(network=t * (2 * teacher.conditioning_channels + 2 + r + 3 * s))
    v = v + block_values(t, r, g, s) * teacher.num_layers
    v = v + Values(float32=t * params)
    if with_loss:
        v = v + Values(float32=4 * t * params)  # 12 T K for the MoL (params = 3K)
    return v


def student_values(student, t):
    """The IAF student's parallel pass over `t` samples (`student`: a StudentConfig)."""
    c = student.channels
    v = Values(network=t * 2 * student.conditioning_channels)
    for layers in student.flow_layers:
        v = v + Values(network=t * c, float32=6 * t)
        v = v + block_values(t, c, 2 * c, 0) * layers
    return v


def kl_values(teacher, num_draws, t):
    """The KL's draws scored against the teacher's mixture: `[M, T, K]` terms."""
    k = teacher.num_mixtures
    return Values(float32=num_draws * t * (10 * k + 4))


def teacher_step_bytes(config, mixed_precision="off"):
    """Estimated bytes of one teacher training step per example."""
    t = config.teacher_training.window_samples
    return STEP_FACTOR * teacher_values(config.teacher, t).bytes(mixed_precision)


def distill_step_bytes(config, mixed_precision="off"):
    """Estimated bytes of one distillation step per example."""
    dc = config.distill
    t = dc.window_samples
    passes = 2 if dc.contrastive_weight > 0 else 1
    v = student_values(config.student, t)
    v = v + (teacher_values(config.teacher, t, with_loss=False)
             + kl_values(config.teacher, dc.num_kl_samples, t)) * passes
    losses = 0.0
    if dc.power_weight > 0:
        losses += 8 * t * len(dc.power_fft_sizes)
    if dc.spectral_weight > 0:
        losses += 16 * t * len(dc.spectral_fft_sizes)
    if dc.adversarial_weight > 0 or dc.feature_matching_weight > 0:
        losses += 6 * t * dc.discriminator_layers * dc.discriminator_channels
    v = v + Values(float32=losses)
    return STEP_FACTOR * v.bytes(mixed_precision)


def available_host_memory():
    """Bytes the step may use on the host: MemAvailable from /proc/meminfo, else the
    physical memory (`SC_PHYS_PAGES * SC_PAGE_SIZE`), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gpu_memory():
    """`(number of visible GPUs, the smallest one's total memory in bytes)`. The memory is
    read from `tf.config.experimental.get_device_details` (`get_memory_info` needs an
    allocation first); most builds do not report it there, and then it is None and the
    GPU check is skipped. `(0, None)` without GPUs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    sizes = []
    for device in gpus:
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            return len(gpus), None
        size = next((details[key] for key in ("memory_limit", "total_memory", "memory_size")
                     if isinstance(details.get(key), (int, float))), None)
        if size is None:
            return len(gpus), None
        sizes.append(int(size))
    return len(gpus), (min(sizes) if sizes else None)


def _gb(n):
    return f"{n / GB:.3g}" if n < 10 * GB else f"{n / GB:,.0f}"


def check_step_memory(config, section, num_replicas=1, mixed_precision="off",
                      available=None, device_memory=None, hint=None):
    """Refuses (ValueError, one line) a step of `config` whose estimate cannot fit.

    Args:
        config: the resolved `Config` (batch size and window as the run will use them).
        section: "teacher_training" or "distill".
        num_replicas: replicas the global batch is split over (a GPU holds one replica's
            share; the host holds the whole batch when the replicas are CPUs).
        mixed_precision: off, bfloat16 or float16.
        available: host bytes available (default: `available_host_memory()`).
        device_memory: bytes of one accelerator; by default `gpu_memory()` when
            `available` is not given either (with GPUs of unknown size nothing is checked).
        hint: what to lower, for the message.

    Returns:
        The estimated bytes of the step (whole batch).
    """
    if section == "teacher_training":
        per_example = teacher_step_bytes(config, mixed_precision)
        hint = hint or "lower --batch-size or the window"
    elif section == "distill":
        per_example = distill_step_bytes(config, mixed_precision)
        hint = hint or "lower distill.batch_size or distill.window_samples in the config"
    else:
        raise ValueError(f"Unknown training section {section!r}")
    training = getattr(config, section)
    batch, window = training.batch_size, training.window_samples
    total = per_example * batch
    what = f"{section}.batch_size {batch} x {window} samples"
    if device_memory is None and available is None:
        num_gpus, device_memory = gpu_memory()
        if num_gpus and device_memory is None:
            return total  # the step runs on GPUs whose size is unknown before allocation
    if device_memory is not None:
        per_device = per_example * math.ceil(batch / max(1, num_replicas))
        if per_device > device_memory:
            raise ValueError(
                f"{what} needs about {_gb(per_device)} GB per accelerator for one step, more "
                f"than its {_gb(device_memory)} GB; {hint}")
        return total
    if available is None:
        available = available_host_memory()
    if available is not None and total > available:
        raise ValueError(
            f"{what} needs about {_gb(total)} GB for one step, more than the "
            f"{_gb(available)} GB available; {hint}")
    return total
