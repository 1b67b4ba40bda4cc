"""Typed, validated configuration.

A config file is JSON with up to five sections: `audio`, `teacher`, `teacher_training`,
`student` and `distill`. Each section is a frozen dataclass; an unknown key or a value of
the wrong type or range is a `ConfigError` that names the section, the key and the value.
Configs are immutable: derive a changed one with `dataclasses.replace` or
`Config.override`, never by mutation.
"""

import dataclasses
import json
import math
import os
import types
import typing
from typing import Optional

from pwavenet_tf.atomic_files import write_json


class ConfigError(ValueError):
    """A config file or value is invalid."""


def _check(cond, section, key, value, why):
    if not cond:
        raise ConfigError(f"Invalid `{section}.{key}`: {why}. Received: {key}={value!r}")


def _coerce(section, name, tp, value):
    """Checks `value` against the annotation `tp`, converting lists to tuples."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(section, name, args[0], value)
    if origin is tuple:
        _check(isinstance(value, (list, tuple)), section, name, value, "expected a list")
        (inner, _) = typing.get_args(tp)
        return tuple(_coerce(section, name, inner, v) for v in value)
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        _check(ok, section, name, value, "expected a number")
        return float(value)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        _check(ok, section, name, value, "expected an integer")
        return value
    if tp is bool:
        _check(isinstance(value, bool), section, name, value, "expected true or false")
        return value
    if tp is str:
        _check(isinstance(value, str), section, name, value, "expected a string")
        return value
    raise TypeError(f"unsupported annotation {tp}")


def _check_upsample_factors(section):
    uf = section.upsample_factors
    _check(len(uf) > 0 and all(f > 0 for f in uf), section.SECTION, "upsample_factors", uf,
           "must be positive integers")


def _check_optimisation(section, positive_keys=()):
    """The checks shared by the two training sections (teacher_training, distill)."""
    s = section.SECTION
    for k in ("batch_size", "window_samples", "steps", "checkpoint_every", "keep_checkpoints",
              *positive_keys):
        _check(getattr(section, k) > 0, s, k, getattr(section, k), "must be positive")
    lr, clip = section.learning_rate, section.clip_norm
    _check(math.isfinite(lr) and lr > 0, s, "learning_rate", lr, "must be a finite number > 0")
    _check(math.isfinite(clip) and clip > 0, s, "clip_norm", clip, "must be a finite number > 0")
    _check(section.num_validation >= 0, s, "num_validation", section.num_validation,
           "must be >= 0")


class _Section:
    """Base for config sections: typed construction from dicts, and validation."""

    SECTION = ""

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise ConfigError(f"Section `{cls.SECTION}` must be an object. Received: {data!r}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"Unknown key(s) in section `{cls.SECTION}`: {', '.join(unknown)}. "
                f"Valid keys: {', '.join(names)}"
            )
        kwargs = {k: _coerce(cls.SECTION, k, hints[k], v) for k, v in data.items()}
        return cls(**kwargs)

    def to_dict(self):
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


@dataclasses.dataclass(frozen=True)
class AudioConfig(_Section):
    """Audio and conditioning-feature front end, shared by teacher and student."""

    SECTION = "audio"
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: Optional[int] = None
    window: str = "hann"
    n_mels: int = 80
    fmin: float = 0.0
    fmax: Optional[float] = 8000.0
    log_floor: float = 1e-5
    # None: log-mel features computed from audio. An int: external frame-level features
    # of that width, read from `.npy` files beside the audio (e.g. linguistic + log-F0).
    feature_dim: Optional[int] = None
    num_speakers: int = 0  # 0 or 1: single speaker.

    def __post_init__(self):
        s = self.SECTION
        _check(self.sample_rate >= 1000, s, "sample_rate", self.sample_rate, "must be >= 1000")
        _check(self.hop_length > 0, s, "hop_length", self.hop_length, "must be positive")
        _check(self.n_fft >= self.hop_length, s, "n_fft", self.n_fft, "must be >= hop_length")
        wl = self.win_length
        _check(wl is None or 0 < wl <= self.n_fft, s, "win_length", wl, "must be in (0, n_fft]")
        _check(self.window in ("hann", "hamming"), s, "window", self.window, "hann or hamming")
        _check(self.n_mels > 0, s, "n_mels", self.n_mels, "must be positive")
        fmax = self.fmax if self.fmax is not None else self.sample_rate / 2
        _check(0 <= self.fmin < fmax, s, "fmin", self.fmin, "must be in [0, fmax)")
        _check(fmax <= self.sample_rate / 2, s, "fmax", self.fmax, "must be <= sample_rate/2")
        _check(self.log_floor > 0, s, "log_floor", self.log_floor, "must be positive")
        fd = self.feature_dim
        _check(fd is None or fd > 0, s, "feature_dim", fd, "must be positive or null")
        _check(self.num_speakers >= 0, s, "num_speakers", self.num_speakers, "must be >= 0")

    @property
    def conditioning_dim(self):
        return self.n_mels if self.feature_dim is None else self.feature_dim

    @property
    def uses_mel(self):
        return self.feature_dim is None


@dataclasses.dataclass(frozen=True)
class TeacherConfig(_Section):
    """The autoregressive WaveNet teacher (constructor arguments of `WaveNetTeacher`)."""

    SECTION = "teacher"
    num_layers: int = 30
    num_cycles: int = 3
    filter_size: int = 3
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 64
    output_distribution: str = "mixture_of_logistics"  # or "mu_law"
    num_mixtures: int = 10
    mu_law_channels: int = 256
    log_scale_min: float = -14.0
    conditioning_channels: int = 80
    upsample_factors: tuple[int, ...] = (16, 16)
    speaker_channels: int = 16
    input_mu_law: bool = True

    def __post_init__(self):
        s = self.SECTION
        _check(self.num_layers > 0, s, "num_layers", self.num_layers, "must be positive")
        ok = self.num_cycles > 0 and self.num_layers % self.num_cycles == 0
        _check(ok, s, "num_cycles", self.num_cycles, "must divide num_layers")
        _check(self.filter_size >= 2, s, "filter_size", self.filter_size, "must be >= 2")
        for k in ("residual_channels", "gate_channels", "skip_channels",
                  "conditioning_channels", "speaker_channels", "num_mixtures"):
            _check(getattr(self, k) > 0, s, k, getattr(self, k), "must be positive")
        _check(self.gate_channels % 2 == 0, s, "gate_channels", self.gate_channels, "must be even")
        od = self.output_distribution
        _check(od in ("mixture_of_logistics", "mu_law"), s, "output_distribution", od,
               "mixture_of_logistics or mu_law")
        _check(self.log_scale_min < 0, s, "log_scale_min", self.log_scale_min, "must be < 0")
        _check_upsample_factors(self)


@dataclasses.dataclass(frozen=True)
class TrainingConfig(_Section):
    """Optimisation settings for `train-teacher` (section `teacher_training`)."""

    SECTION = "teacher_training"
    batch_size: int = 8
    window_samples: int = 7680
    learning_rate: float = 2e-4
    steps: int = 100000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    clip_norm: float = 1.0
    ema_decay: Optional[float] = None
    num_validation: int = 0
    log_audio_every: int = 0  # steps between TensorBoard audio (0: at the end only)

    def __post_init__(self):
        _check_optimisation(self)
        e = self.ema_decay
        _check(e is None or 0 < e < 1, self.SECTION, "ema_decay", e, "must be in (0, 1) or null")


@dataclasses.dataclass(frozen=True)
class StudentConfig(_Section):
    """The IAF student (constructor arguments of `IAFStudent`)."""

    SECTION = "student"
    flow_layers: tuple[int, ...] = (10, 10, 10, 30)
    dilation_cycle: int = 10
    channels: int = 64
    filter_size: int = 3
    conditioning_channels: int = 64
    upsample_factors: tuple[int, ...] = (16, 16)
    speaker_channels: int = 16
    log_scale_min: float = -7.0
    log_scale_max: float = 3.0
    # log of the whole stack's scale s_tot at initialisation: -3.0 is s_tot ~ 0.05, the
    # scale bfs18's LJ Speech student starts from.
    initial_log_scale: float = -3.0
    # "none": learned per-position repetitions (frame-rate lines on stationary input);
    # "linear": interpolate, then one shared map per stage (`ConditioningUpsampler`).
    upsampler_interpolation: str = "none"
    # Cutoff (Hz) of a causal high-pass after the flows (`CausalHighpass`; 0: none): removes
    # a DC offset and sub-cutoff drift, exactly as a shift of mu_tot.
    output_highpass_hz: float = 0.0

    def __post_init__(self):
        s = self.SECTION
        fl = self.flow_layers
        _check(math.isfinite(self.output_highpass_hz) and self.output_highpass_hz >= 0, s,
               "output_highpass_hz", self.output_highpass_hz, "must be 0 (off) or a cutoff > 0")
        _check(self.upsampler_interpolation in ("none", "linear"), s,
               "upsampler_interpolation", self.upsampler_interpolation,
               "must be \"none\" or \"linear\"")
        _check(len(fl) > 0 and all(n > 0 for n in fl), s, "flow_layers", fl,
               "must be a non-empty list of positive layer counts")
        for k in ("dilation_cycle", "channels", "conditioning_channels", "speaker_channels"):
            _check(getattr(self, k) > 0, s, k, getattr(self, k), "must be positive")
        _check(self.filter_size >= 2, s, "filter_size", self.filter_size, "must be >= 2")
        _check(self.log_scale_min < self.log_scale_max, s, "log_scale_min", self.log_scale_min,
               "must be < log_scale_max")
        per_flow = self.initial_log_scale / len(fl)
        _check(self.log_scale_min < per_flow < self.log_scale_max, s, "initial_log_scale",
               self.initial_log_scale,
               f"divided by the {len(fl)} flows it must lie inside (log_scale_min, "
               "log_scale_max)")
        _check_upsample_factors(self)


@dataclasses.dataclass(frozen=True)
class DistillConfig(_Section):
    """Probability density distillation settings."""

    SECTION = "distill"
    batch_size: int = 4
    window_samples: int = 7680
    learning_rate: float = 2e-4
    # The learning rate rises linearly from learning_rate / warmup_steps over the run's first
    # warmup_steps steps (0: none); for runs started with --init-from.
    warmup_steps: int = 0
    steps: int = 100000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    clip_norm: float = 1.0
    num_kl_samples: int = 32
    kl_weight: float = 1.0
    power_weight: float = 1.0
    power_fft_sizes: tuple[int, ...] = (2048, 512, 128)
    # None: the paper's linear power. A floor (e.g. 1e-8): compare log power spectra, which
    # is scale-free and keeps pushing a quiet student up however quiet it gets.
    power_log_floor: Optional[float] = None
    spectral_weight: float = 0.0
    spectral_fft_sizes: tuple[int, ...] = (1024, 512, 256, 128)
    # Per-size window and hop (null: window = FFT size, hop = window / 4). Parallel
    # WaveGAN's resolutions: fft (1024, 2048, 512), hop (120, 240, 50), win (600, 1200, 240).
    spectral_win_lengths: Optional[tuple[int, ...]] = None
    spectral_hop_lengths: Optional[tuple[int, ...]] = None
    # Long-term average spectrum of student vs real audio in the log domain (a log-floor
    # power loss at one fine FFT size): catches a DC offset and stationary tones in quiet
    # bands, which the linear power loss weighs by their (small) energy. Off with 0.
    ltas_weight: float = 0.0
    ltas_fft_size: int = 2048
    ltas_floor: float = 1e-9
    perceptual_weight: float = 0.0
    perceptual_style_weight: float = 1.0
    perceptual_feature_weight: float = 0.0
    perceptual_classes: int = 32  # k-means pseudo-phones (ignored with a label file)
    perceptual_classifier_steps: int = 1000
    perceptual_labels: Optional[str] = None  # folder of per-utterance phone label files
    contrastive_weight: float = 0.0
    contrastive_gamma: float = 0.3
    num_validation: int = 0
    ema_decay: Optional[float] = None  # Polyak averaging of the student's weights
    # GAN-augmented distillation (Yamamoto et al. 2019): off with adversarial_weight 0.
    adversarial_weight: float = 0.0  # least-squares generator loss of the student
    adversarial_start_step: int = 0  # the student's adversarial terms count from this step
    feature_matching_weight: float = 0.0  # L1 between discriminator features of real/student
    discriminator_layers: int = 10  # Parallel WaveGAN discriminator: dilated convs in all
    discriminator_channels: int = 64
    discriminator_learning_rate: float = 1e-4  # its own Adam (clip norm: clip_norm)
    # Recompute the teacher's passes in the backward pass (tf.recompute_grad) instead of
    # keeping their activations: less memory per step, one more teacher forward pass.
    recompute_teacher: bool = False

    def __post_init__(self):
        s = self.SECTION
        e = self.ema_decay
        _check(e is None or 0 < e < 1, s, "ema_decay", e, "must be in (0, 1) or null")
        _check(self.warmup_steps >= 0, s, "warmup_steps", self.warmup_steps, "must be >= 0")
        _check_optimisation(self, ("num_kl_samples", "perceptual_classes",
                                   "perceptual_classifier_steps"))
        for k in ("kl_weight", "power_weight", "spectral_weight", "ltas_weight",
                  "perceptual_weight", "perceptual_style_weight",
                  "perceptual_feature_weight", "contrastive_weight", "contrastive_gamma"):
            _check(getattr(self, k) >= 0, s, k, getattr(self, k), "must be >= 0")
        _check(len(self.power_fft_sizes) > 0 and all(n >= 16 for n in self.power_fft_sizes), s,
               "power_fft_sizes", self.power_fft_sizes, "must be a list of sizes >= 16")
        plf = self.power_log_floor
        _check(plf is None or plf > 0, s, "power_log_floor", plf, "must be > 0 or null")
        _check(self.ltas_fft_size >= 16, s, "ltas_fft_size", self.ltas_fft_size,
               "must be an FFT size >= 16")
        _check(math.isfinite(self.ltas_floor) and self.ltas_floor > 0, s, "ltas_floor",
               self.ltas_floor, "must be a finite number > 0")
        _check(len(self.spectral_fft_sizes) > 0 and all(n >= 16 for n in self.spectral_fft_sizes),
               s, "spectral_fft_sizes", self.spectral_fft_sizes, "must be a list of sizes >= 16")
        sw = self.spectral_win_lengths
        _check(sw is None or (len(sw) == len(self.spectral_fft_sizes) and all(
            2 <= w <= n for w, n in zip(sw, self.spectral_fft_sizes))), s,
            "spectral_win_lengths", sw, "must be null or one window in [2, fft size] per "
            "spectral_fft_sizes entry")
        sh = self.spectral_hop_lengths
        _check(sh is None or (len(sh) == len(self.spectral_fft_sizes) and all(
            h >= 1 for h in sh)), s, "spectral_hop_lengths", sh,
            "must be null or one hop >= 1 per spectral_fft_sizes entry")
        for k in ("adversarial_weight", "feature_matching_weight", "adversarial_start_step"):
            v = getattr(self, k)
            _check(math.isfinite(v) and v >= 0, s, k, v, "must be >= 0")
        _check(self.feature_matching_weight == 0 or self.adversarial_weight > 0, s,
               "feature_matching_weight", self.feature_matching_weight,
               "needs adversarial_weight > 0 (feature matching uses the discriminator)")
        _check(self.discriminator_layers >= 2, s, "discriminator_layers",
               self.discriminator_layers, "must be >= 2")
        _check(self.discriminator_channels > 0, s, "discriminator_channels",
               self.discriminator_channels, "must be positive")
        dlr = self.discriminator_learning_rate
        _check(math.isfinite(dlr) and dlr > 0, s, "discriminator_learning_rate", dlr,
               "must be a finite number > 0")


_SECTIONS = {
    "audio": AudioConfig,
    "teacher": TeacherConfig,
    "teacher_training": TrainingConfig,
    "student": StudentConfig,
    "distill": DistillConfig,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole config: every section, defaults filled in."""

    audio: AudioConfig = AudioConfig()
    teacher: TeacherConfig = TeacherConfig()
    teacher_training: TrainingConfig = TrainingConfig()
    student: StudentConfig = StudentConfig()
    distill: DistillConfig = DistillConfig()
    name: str = "custom"

    def __post_init__(self):
        hop = self.audio.hop_length
        for section in (self.teacher, self.student):
            prod = 1
            for f in section.upsample_factors:
                prod *= f
            if prod != hop:
                raise ConfigError(
                    f"Invalid `{section.SECTION}.upsample_factors`: their product must equal "
                    f"audio.hop_length={hop}. Received: upsample_factors="
                    f"{list(section.upsample_factors)} (product {prod})"
                )
        for section in (self.teacher_training, self.distill):
            if section.window_samples % hop:
                raise ConfigError(
                    f"Invalid `{section.SECTION}.window_samples`: must be a multiple of "
                    f"audio.hop_length={hop}. Received: window_samples={section.window_samples}"
                )

    @classmethod
    def from_dict(cls, data, name="custom"):
        if not isinstance(data, dict):
            raise ConfigError(f"A config must be a JSON object. Received: {type(data).__name__}")
        data = dict(data)
        name = data.pop("name", name)
        unknown = sorted(set(data) - set(_SECTIONS))
        if unknown:
            raise ConfigError(
                f"Unknown config section(s): {', '.join(unknown)}. "
                f"Valid sections: {', '.join(_SECTIONS)}"
            )
        sections = {k: _SECTIONS[k].from_dict(data.get(k, {})) for k in _SECTIONS}
        return cls(name=name, **sections)

    def to_dict(self):
        out = {"name": self.name}
        out.update({k: getattr(self, k).to_dict() for k in _SECTIONS})
        return out

    def override(self, **sections):
        """Returns a new Config with keys of sections replaced: `override(distill={...})`."""
        data = self.to_dict()
        for k, v in sections.items():
            if k not in _SECTIONS:
                raise ConfigError(f"Unknown config section: {k}")
            data[k] = {**data[k], **v}
        return Config.from_dict(data)


def distillation_density_problem(output_distribution):
    """Why a teacher with this output cannot be distilled, or None when it can.

    The KL needs a continuous teacher density (mixture of logistics); a mu-law teacher's
    output is a categorical over integer classes, which passes no gradient to the
    student's samples, so its "KL" is not a KL.
    """
    if output_distribution == "mixture_of_logistics":
        return None
    return (
        "distillation needs a teacher with a continuous output density "
        "(teacher.output_distribution='mixture_of_logistics'); a mu_law teacher is a "
        "categorical over integer classes, which passes no gradient to the student's "
        f"samples. Received: output_distribution={output_distribution!r}"
    )


def check_distillable(config):
    """Raises `ConfigError` unless the config's teacher can be distilled."""
    problem = distillation_density_problem(config.teacher.output_distribution)
    if problem:
        raise ConfigError(f"Invalid `teacher.output_distribution`: {problem}")


def config_dir():
    """The folder of bundled configs (`configs/` in a checkout, or the packaged copy)."""
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, "resources", "configs")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "configs")


def load_config(path_or_name):
    """Loads a JSON config by path, or by bundled name (`tiny`, `ljspeech`, `paper`)."""
    path = os.fspath(path_or_name)
    candidate = os.path.join(config_dir(), f"{path}.json")
    # A bundled name wins over a folder of the same name (`--config tiny` next to a run
    # folder `tiny/`): a folder is never a config.
    if not path.endswith(".json") and os.path.isfile(candidate) and (
            not os.path.exists(path) or (os.path.isdir(path) and os.sep not in path)):
        path = candidate
    names = ", ".join(bundled_config_names())
    if not os.path.exists(path):
        raise ConfigError(
            f"Config file not found: {path_or_name}. Give a path to a JSON config or a bundled "
            f"name ({names})."
        )
    if os.path.isdir(path):
        inside = os.path.join(path, "config.json")
        hint = f" (a training folder: {inside} is its config)" if os.path.isfile(inside) else ""
        raise ConfigError(
            f"Config {path_or_name} is a folder, not a JSON file{hint}. Give a path to a JSON "
            f"config or a bundled name ({names})."
        )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"Config file {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a JSON object ({{...}}). "
                          f"Received: {type(data).__name__}")
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        return Config.from_dict(data, name=name)
    except ConfigError as e:
        raise ConfigError(f"Config file {path}: {e}") from e


def bundled_config_names():
    d = config_dir()
    if not os.path.isdir(d):
        return []
    return sorted(os.path.splitext(f)[0] for f in os.listdir(d) if f.endswith(".json"))


def save_config(config, path):
    """Writes the config as JSON, atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(path, config.to_dict())
