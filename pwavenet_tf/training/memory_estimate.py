"""How much memory one training step needs, checked before the first step.

A batch that cannot fit (`--batch-size 20000`) used to run until the machine was out of
memory. `check_step_memory` estimates the step from the config alone (nothing is
allocated) and refuses with a one-line `ValueError` naming the estimate and the memory
available, which the CLI prints with exit code 2.

Teacher training step (`teacher_step_bytes`): the activations of one example's forward
pass, value by value, from the shapes of the layers (T = window_samples; R residual, G
gate, S skip channels, K mixtures, C conditioning channels): upsampled conditioning `2 T C`;
input transform and projection `T (2 + R)`; per block the dilated conv output, the
conditioning projection and their sum `3 T G`, tanh, sigmoid and their product `1.5 T G`,
the residual projection, the residual sum and the padded conv input `4 T R`, the skip
projection and the running skip sum `2 T S`; the head `3 T S + 3 T K`; the MoL loss's
per-component terms `12 T K`; times `STEP_FACTOR` (0.45), the measured peak being a third
to two fifths of that count (tiny, T 2048: 8.6 MB per example measured, 9.4 estimated;
ljspeech_mini, T 4096: 61 MB, 83 MB).

Distillation step (`distill_step_bytes`): what the backward pass HOLDS at its peak, per
example-sample, not every op's output (that count, times a 0.45 factor, was 1.84x the
measured paper step: it counted the projections' outputs and sums, which are freed as the
forward pass goes, and the frozen teacher's gate products, which its backward pass does not
need). Values are 4 bytes (float32); with `mixed_precision` the network activations are 2
bytes while the distribution parameters and the KL's terms stay float32.

- A gated residual layer of a TRAINED network (the student's flows: R = channels, G = 2
  channels) keeps its dilated conv's input (R), the gate's tanh and sigmoid (G) and their
  product (G/2, the residual and skip projections' input, needed for their kernels'
  gradients): `R + 1.5 G` values.
- A layer of a FROZEN network (the teacher; the perceptual loss's phone classifier) keeps
  `R + G`: the tanh and sigmoid (their own and their product's gradients need them) and the
  conv's input (TensorFlow's convolution gradient reads the input's shape, which keeps it
  alive until then; without it the paper estimate would be 23% below the measurement);
  the product is not kept, its only use backwards is the frozen projections' kernel
  gradient, which is not computed.
- Outside the layers: a teacher pass keeps its head's two ReLU outputs `2 S`, its input
  features `2` and its `3 K` mixture parameters (float32); the student keeps its upsampled
  conditioning `C` (the input of every layer's conditioning projection), and per flow the
  shifted input `1`, the output projection's ReLU input `R` and the affine update `6`.
- The KL (per teacher pass, M = num_kl_samples draws scored against K components): the log
  density's backward pass keeps 7 of its `[M, T, K]` intermediates (the three shifted
  centres `x - mu`, `x - mu +- delta`, inputs of the products with 1/s; the three softplus
  inputs; the logsumexp's input) and the `where`'s boolean mask (a quarter of a value):
  `7.25 M K` values, plus the draws and their log densities `4 M`.
- The contrastive term is a second teacher pass with its own KL; the power and spectral
  losses add `8 T` per FFT size (`16 T` for the spectral loss, which transforms the real
  audio too); a discriminator adds `6 T` per layer-channel (real and student audio).

Per example-sample at the paper config (30 teacher layers R 512, G 512, S 256, K 10; 60
student layers of 64 channels; M 100; contrastive on; 6 x 32-channel classifier layers):
teacher pass 30 x (512 + 512) + 2 x 256 + 2 + 30 = 31,264 values, two passes 62,528;
student 60 x (64 + 1.5 x 128) + 64 + 4 x (1 + 64 + 6) = 15,708; KL 2 x (7.25 x 100 x 10 +
400) = 15,300; power loss 3 x 8 = 24; classifier 6 x (32 + 64) = 576. Total 94,136 values
= 377 kB.

Calibration (`python benchmarks/distill_memory.py`, BENCHMARKS.md "Distillation step
memory"): the slope of peak RSS minus the RSS before one compiled `fit` step, in a fresh
subprocess per size, between two batch x window sizes (the models, their optimizer slots,
TensorFlow and the step's tracing cancel). CPU, float32, TF 2.17 / Keras 3.8:

    distillation step (sizes B x W)                measured      estimate   meas./est.
    paper (1x1200, 2x2400)                         331 kB         377 kB      0.88
    paper, num_kl_samples 1                        280 kB         316 kB      0.88
    paper, recompute_teacher (not credited)        293 kB         377 kB      0.78
    ljspeech (1x1024, 2x4096)                      160 kB         159 kB      1.01
    tiny (4x2048, 16x2048)                         7.9 kB         7.3 kB      1.09

`distill.recompute_teacher` is not credited: it saves 12% at the paper config (the two
passes' recomputations are independent branches of the backward graph and may run at the
same time, each keeping a whole pass), and the estimate is a pre-flight bound.

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
    """One gated residual block's activations over `t` timesteps (every op's output; the
    teacher training estimate)."""
    return Values(network=t * (3 * gate + 1.5 * gate + 4 * residual + 2 * skip))


def teacher_values(teacher, t, with_loss=True):
    """The teacher's teacher-forced pass over `t` samples (`teacher`: a TeacherConfig),
    every op's output (the teacher training estimate)."""
    r, g, s = teacher.residual_channels, teacher.gate_channels, teacher.skip_channels
    params = _num_params(teacher)
    v = Values(network=t * (2 * teacher.conditioning_channels + 2 + r + 3 * s))
    v = v + block_values(t, r, g, s) * teacher.num_layers
    v = v + Values(float32=t * params)
    if with_loss:
        v = v + Values(float32=4 * t * params)  # 12 T K for the MoL (params = 3K)
    return v


def _num_params(teacher):
    return (3 * teacher.num_mixtures if teacher.output_distribution == "mixture_of_logistics"
            else teacher.mu_law_channels)


# --- Distillation: what the backward pass keeps (module docstring) ------------------

# The perceptual loss's phone classifier as DistillTask builds it (PhoneClassifier's
# defaults): 6 gated layers of 32 residual channels, 64 gate channels.
CLASSIFIER_LAYERS = 6
CLASSIFIER_CHANNELS = 32
KL_KEPT_PER_COMPONENT = 7.25  # [M, T, K] intermediates kept per pass (docstring)


def trained_layer_kept(residual, gate):
    """Values per sample a trained gated layer keeps: conv input, tanh, sigmoid, product."""
    return residual + 1.5 * gate


def frozen_layer_kept(residual, gate):
    """Values per sample a frozen gated layer keeps: conv input, tanh, sigmoid."""
    return residual + gate


def kept_teacher_pass(teacher, t):
    """A frozen teacher pass over `t` samples (the KL's scoring of the student's sample)."""
    r, g, s = teacher.residual_channels, teacher.gate_channels, teacher.skip_channels
    return (Values(network=t * (teacher.num_layers * frozen_layer_kept(r, g) + 2 * s + 2))
            + Values(float32=t * _num_params(teacher)))


def kept_student(student, t):
    """The IAF student's parallel pass over `t` samples (`student`: a StudentConfig)."""
    c = student.channels
    per_flow = 1 + c + 6  # shifted input, the output projection's ReLU input, affine update
    layers = sum(student.flow_layers)
    return Values(network=t * (layers * trained_layer_kept(c, 2 * c)
                               + student.conditioning_channels),
                  float32=t * per_flow * len(student.flow_layers))


def kept_kl(teacher, num_draws, t):
    """The KL's draws scored against the teacher's mixture, one pass: `[M, T, K]` terms."""
    k = teacher.num_mixtures
    return Values(float32=num_draws * t * (KL_KEPT_PER_COMPONENT * k + 4))


def distill_step_bytes(config, mixed_precision="off"):
    """Estimated bytes of one distillation step per example (module docstring)."""
    dc = config.distill
    t = dc.window_samples
    passes = 2 if dc.contrastive_weight > 0 else 1
    v = kept_student(config.student, t)
    v = v + (kept_teacher_pass(config.teacher, t)
             + kept_kl(config.teacher, dc.num_kl_samples, t)) * passes
    losses = 0.0
    if dc.power_weight > 0:
        losses += 8 * t * len(dc.power_fft_sizes)
    if dc.spectral_weight > 0:
        # 16 T at the default hop of N / 4; the frame count grows as N / hop.
        wins = dc.spectral_win_lengths or dc.spectral_fft_sizes
        hops = dc.spectral_hop_lengths or [max(1, round(w / 4)) for w in wins]
        losses += sum(4 * t * n / h for n, h in zip(dc.spectral_fft_sizes, hops))
    if dc.adversarial_weight > 0 or dc.feature_matching_weight > 0:
        losses += 6 * t * dc.discriminator_layers * dc.discriminator_channels
    if dc.perceptual_weight > 0:
        v = v + Values(network=t * CLASSIFIER_LAYERS * frozen_layer_kept(
            CLASSIFIER_CHANNELS, 2 * CLASSIFIER_CHANNELS))
    v = v + Values(float32=losses)
    return v.bytes(mixed_precision)


def teacher_step_bytes(config, mixed_precision="off"):
    """Estimated bytes of one teacher training step per example."""
    t = config.teacher_training.window_samples
    return STEP_FACTOR * teacher_values(config.teacher, t).bytes(mixed_precision)


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
