"""Loading trained models and preparing their conditioning for generation and vocoding."""

import math
import os

import numpy as np

from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.audio.front_end import make_log_mel
from pwavenet_tf.training.checkpointing import CheckpointError, model_dir_role


def features_from_audio(audio, audio_config, mel_layer=None):
    """Log-mel features `[F, n_mels]` of mono audio (trimmed to a multiple of hop)."""
    if not audio_config.uses_mel:
        raise ValueError(
            "This model is conditioned on external features (audio.feature_dim="
            f"{audio_config.feature_dim}); pass a feature array (--mel FILE.npy) instead of audio."
        )
    hop = audio_config.hop_length
    audio = np.asarray(audio, dtype="float32")
    frames = len(audio) // hop
    if frames == 0:
        raise ValueError(
            f"Audio is shorter than one frame ({len(audio)} < hop_length={hop} samples)."
        )
    layer = mel_layer or make_log_mel(audio_config)
    return np.asarray(layer(audio[None, : frames * hop]))[0]


def features_from_file(path, audio_config):
    """Features `[F, D]` of an audio file (resampled) or a `.npy` feature array."""
    if str(path).endswith(".npy"):
        return load_feature_array(path, audio_config.conditioning_dim)
    return features_from_audio(read_audio(path, sample_rate=audio_config.sample_rate),
                               audio_config)


def load_feature_array(path, dim):
    """Loads and validates a `[frames, dim]` float feature array (finite, non-empty)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Feature file not found: {path}")
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"Could not read feature file {path}: {e}") from e
    if feats.dtype.kind not in "fiu":  # strings, booleans, complex, records
        raise ValueError(
            f"Feature file {path} must hold numbers (a float [frames, {dim}] log-mel array). "
            f"Received: dtype={feats.dtype}"
        )
    if feats.ndim == 3 and feats.shape[0] == 1:
        feats = feats[0]
    if feats.ndim != 2 or feats.shape[1] != dim:
        raise ValueError(
            f"Feature file {path} must hold a [frames, {dim}] array for this model. "
            f"Received: shape={feats.shape}"
        )
    if feats.shape[0] == 0:
        raise ValueError(f"Feature file {path} has no frames.")
    if not np.all(np.isfinite(feats)):
        raise ValueError(f"Feature file {path} contains NaN or Inf.")
    return feats.astype("float32")


def load_model(model_dir=None, role=None, precision="float32"):
    """Loads a model: returns `(role, model, config)`.

    `model_dir` is a teacher or student training directory, a preset folder, or a bundled
    preset name; None means the bundled default preset. For presets, `role` picks
    "student" (default) or "teacher". `precision` (`float32` or `bfloat16`) applies to a
    student (`student_with_precision`: bfloat16 products, float32 variables and flow
    arithmetic); a teacher runs in float32 only, so `bfloat16` with a teacher is an error.
    """
    from pwavenet_tf import presets
    from pwavenet_tf.models.student_precision import check_precision

    check_precision(precision)
    role, model, config = _load_float32_model(model_dir, role)
    if precision != "float32":
        if role != "student":
            raise ValueError(f"--precision {precision} applies to the student only; "
                             f"{model_dir or presets.DEFAULT_PRESET} gives a {role}, which "
                             "runs in float32 (drop --precision).")
        from pwavenet_tf.models.student_precision import student_with_precision

        model = student_with_precision(model, precision)
    return role, model, config


def _load_float32_model(model_dir, role):
    from pwavenet_tf import presets

    if model_dir is None:
        model_dir = presets.DEFAULT_PRESET
    if presets.is_preset_dir(model_dir) or (
            not os.path.exists(model_dir) and model_dir in presets.list_presets()):
        preset = presets.from_preset(model_dir)
        role = role or "student"
        model = preset.teacher() if role == "teacher" else preset.student()
        return role, model, preset.config
    role = model_dir_role(model_dir)
    if role == "teacher":
        from pwavenet_tf.training.teacher_task import load_teacher

        model, config = load_teacher(model_dir)
    elif role == "student":
        from pwavenet_tf.training.distill_task import load_student

        model, config = load_student(model_dir)
    elif not os.path.isdir(model_dir):
        raise CheckpointError(f"Model directory not found: {model_dir}")
    else:
        raise CheckpointError(
            f"{model_dir} is not a pwavenet training directory (no pwavenet_model.json)."
        )
    return role, model, config


def real_time_factor(num_samples, sample_rate, seconds):
    """Seconds of compute per second of audio (< 1 is faster than real time)."""
    audio_seconds = num_samples / sample_rate
    return seconds / audio_seconds if audio_seconds else math.inf


def stream_student(student, features, speaker_id=None, seed=0, chunk_frames=None,
                   jit_compile=False):
    """Yields the student's audio for `features` `[F, D]` chunk by chunk (float32 `[n]`).

    The features go `chunk_frames` frames at a time (None: all at once) through a
    `StreamingVocoder`, which carries each flow's queues between chunks, so memory does
    not grow with the input's length and the audio equals the one-pass audio of `seed`
    (`StudentGenerator.generate(seed=(seed, 0))`, the export's `seed`). The first chunk's
    audio lags by the upsampler's look-ahead (one frame); the last comes from `flush`.
    """
    from pwavenet_tf.models.streaming_vocoder import StreamingVocoder

    vocoder = StreamingVocoder(student, seed=seed, speaker_id=speaker_id,
                               jit_compile=jit_compile)
    frames = len(features)
    step = frames if chunk_frames is None else max(1, int(chunk_frames))
    for f0 in range(0, frames, step):
        audio = vocoder.push(features[f0:f0 + step])
        if audio.size:
            yield audio
    yield vocoder.flush()


def write_wav_chunks(path, chunks, sample_rate):
    """Writes mono 16-bit PCM WAV from an iterable of float `[n]` chunks as they come
    (`float_to_pcm16` per chunk, as `write_wav`), atomically like `write_wav`: a failure
    midway leaves no partial file. Returns the number of samples written."""
    import wave

    from pwavenet_tf.audio.audio_io import AudioError, _write_atomically
    from pwavenet_tf.audio.quantize import float_to_pcm16

    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    written = [0]

    def write(f):
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            for chunk in chunks:
                chunk = np.asarray(chunk, dtype="float32").reshape(-1)
                if not np.all(np.isfinite(chunk)):
                    raise AudioError("Cannot write audio containing NaN or Inf samples. "
                                     f"Received: path={path!r}")
                w.writeframes(float_to_pcm16(chunk).astype("<i2").tobytes())
                written[0] += len(chunk)

    _write_atomically(path, write)
    return written[0]
