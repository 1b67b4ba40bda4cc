"""Audio file I/O: `read_audio`, `write_wav` and a windowed-sinc `resample`.

- WAV is parsed with a small RIFF reader (PCM 8/16/24/32-bit, IEEE float 32/64-bit,
  `WAVE_FORMAT_EXTENSIBLE` wrapping either) so that 16-bit files decode exactly with the
  `pcm16_to_float` convention of `pwavenet_tf.audio.quantize`.
- FLAC, MP3 and OGG go through `tensorflow_io` (`tfio.audio.AudioIOTensor`); int16 sources
  use the same exact pcm16 convention, float sources (MP3, Vorbis) are taken as they are.
- Integer PCM of `b` bits generalizes the convention: `x = (q + 2^(b-1)) * 2 / (2^b - 1) - 1`
  (8-bit WAV is unsigned: `x = u * 2 / 255 - 1`).
- Multichannel audio is mixed to mono by averaging the channels.
- Resampling (`resample`) is a numpy band-limited (Kaiser-windowed sinc) polyphase
  interpolator with zero delay: output sample `n` is the band-limited input evaluated at
  input time `n * orig_sr / target_sr`. (`tfio.audio.resample` was not used because it
  delays the signal by ~35 samples at 22,050 -> 24,000 Hz.)

All problems raise `AudioError` (a `ValueError`) naming the problem and the path.
"""

from __future__ import annotations

import errno
import math
import os
import wave
from typing import Any

import numpy as np

from pwavenet_tf.audio.quantize import float_to_pcm16, pcm16_to_float

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

__all__ = ["SUPPORTED_EXTENSIONS", "AudioError", "read_audio", "resample", "write_wav"]


class AudioError(ValueError):
    """An audio file is missing, unsupported, undecodable, empty or not finite."""


# --------------------------------------------------------------------------------------
# Decoding helpers


def _int_pcm_to_float(q: np.ndarray, bits: int) -> np.ndarray:
    """Signed `bits`-bit integer codes -> float32 bin centres of [-1, 1]."""
    if bits == 16:
        return pcm16_to_float(q.astype(np.int16))
    half = float(2 ** (bits - 1))
    return ((q.astype(np.float64) + half) * 2.0 / (2.0 * half - 1.0) - 1.0).astype(np.float32)


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    """Parses a RIFF/WAVE file into float32 `[frames, channels]` and its sample rate."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"Could not decode WAV file: not a RIFF/WAVE file. Received: path={path!r}")
    fmt = None
    pcm = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 : pos + 8 + size]  # may be short for truncated files
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioError(
                    f"Could not decode WAV file: truncated 'fmt ' chunk. Received: path={path!r}"
                )
            tag = int.from_bytes(body[0:2], "little")
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            block_align = int.from_bytes(body[12:14], "little")
            bits = int.from_bytes(body[14:16], "little")
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = int.from_bytes(body[24:26], "little")  # first 2 bytes of the subformat GUID
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk_id == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        missing = "'fmt '" if fmt is None else "'data'"
        raise AudioError(
            f"Could not decode WAV file: no {missing} chunk (corrupt or truncated file). "
            f"Received: path={path!r}"
        )
    tag, channels, rate, block_align, bits = fmt
    if channels < 1 or rate < 1 or block_align < channels:
        raise AudioError(
            f"Could not decode WAV file: invalid header (channels={channels}, rate={rate}, "
            f"block_align={block_align}). Received: path={path!r}"
        )
    width = block_align // channels  # container bytes per sample
    n = len(pcm) // block_align
    raw = np.frombuffer(pcm[: n * block_align], dtype=np.uint8).reshape(n, channels, block_align // channels)
    raw = raw[:, :, :width]
    if tag == _WAVE_FORMAT_PCM and width == 1:
        audio = (raw[..., 0].astype(np.float64) * 2.0 / 255.0 - 1.0).astype(np.float32)
    elif tag == _WAVE_FORMAT_PCM and width in (2, 3, 4):
        # Little-endian signed integers of `width` bytes, sign-extended through int32.
        padded = np.zeros((n, channels, 4), dtype=np.uint8)
        padded[..., 4 - width :] = raw
        q = padded.view("<i4")[..., 0] >> (8 * (4 - width))
        audio = _int_pcm_to_float(q, 8 * width)
    elif tag == _WAVE_FORMAT_IEEE_FLOAT and width in (4, 8):
        dtype = "<f4" if width == 4 else "<f8"
        audio = np.ascontiguousarray(raw).view(dtype)[..., 0].astype(np.float32)
    else:
        raise AudioError(
            f"Unsupported WAV encoding (format tag {tag:#06x}, {bits} bits per sample). "
            f"Supported: integer PCM 8/16/24/32-bit and IEEE float 32/64-bit. "
            f"Received: path={path!r}"
        )
    return audio, rate


def _short_error(e: Exception) -> str:
    msg = str(e).strip()
    if "}}" in msg:  # strip TensorFlow's "{{function_node ...}}" prefix
        msg = msg.split("}}", 1)[1]
    return msg.split(" [Op:")[0].strip().splitlines()[0] if msg else type(e).__name__


def _read_tfio(path: str) -> tuple[np.ndarray, int]:
    """Decodes FLAC/MP3/OGG with tensorflow-io into float32 `[frames, channels]`."""
    import tensorflow as tf
    import tensorflow_io as tfio

    try:
        tensor = tfio.audio.AudioIOTensor(path)
        rate = int(tensor.rate.numpy())
        samples = tensor.to_tensor().numpy()
    except (tf.errors.OpError, RuntimeError, ValueError, TypeError) as e:
        raise AudioError(
            f"Could not decode audio file (corrupt or unsupported data: {_short_error(e)}). "
            f"Received: path={path!r}"
        ) from e
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.dtype == np.int16:
        audio = pcm16_to_float(samples)
    elif samples.dtype == np.int32:
        audio = _int_pcm_to_float(samples, 32)
    elif samples.dtype == np.uint8:
        audio = (samples.astype(np.float64) * 2.0 / 255.0 - 1.0).astype(np.float32)
    elif samples.dtype.kind == "f":
        audio = samples.astype(np.float32)
    else:
        raise AudioError(
            f"Unsupported decoded sample type {samples.dtype}. Received: path={path!r}"
        )
    return audio, rate


def _check_rate(name: str, rate: Any) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={rate!r}")
    if rate <= 0 or float(rate) != int(rate):
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={rate!r}")
    return int(rate)


# --------------------------------------------------------------------------------------
# Public API


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    return_sample_rate: bool = False,
) -> np.ndarray | tuple[np.ndarray, int]:
    """Reads a mono float32 `[T]` waveform in [-1, 1] from a WAV/FLAC/MP3/OGG file.

    Args:
        path: the audio file.
        sample_rate: if given and different from the file's rate, the audio is resampled
            to it with `resample`.
        return_sample_rate: also return the rate of the returned audio.

    Raises:
        AudioError: missing file, unsupported extension, undecodable file, no samples,
            or NaN/Inf samples.
    """
    path = os.fspath(path)
    if sample_rate is not None:
        sample_rate = _check_rate("sample_rate", sample_rate)
    if not os.path.exists(path):
        raise AudioError(f"Audio file not found. Received: path={path!r}")
    if not os.path.isfile(path):
        raise AudioError(f"Audio path is not a regular file. Received: path={path!r}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise AudioError(
            f"Unsupported audio file extension {ext!r} (supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}). Received: path={path!r}"
        )
    if os.path.getsize(path) == 0:
        raise AudioError(f"Could not decode audio file: the file is empty (0 bytes). Received: path={path!r}")
    frames, rate = _read_wav(path) if ext == ".wav" else _read_tfio(path)
    if frames.shape[0] == 0:
        raise AudioError(f"Audio file contains no samples (empty audio). Received: path={path!r}")
    if not np.all(np.isfinite(frames)):
        raise AudioError(f"Audio file contains NaN or Inf samples. Received: path={path!r}")
    if frames.shape[1] == 1:
        audio = frames[:, 0]
    else:
        audio = frames.astype(np.float64).mean(axis=1).astype(np.float32)
    if sample_rate is not None and sample_rate != rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    return (audio, rate) if return_sample_rate else audio


def write_wav(path: str | os.PathLike, audio: Any, sample_rate: int) -> str:
    """Writes mono 16-bit PCM WAV (`float_to_pcm16`: clip to [-1, 1], nearest bin).

    `audio` is `[T]` (or `[1, T]` / `[T, 1]`), numpy or tensor. Parent directories are
    created. Returns the path written.

    The write is atomic: the file is written under a hidden temporary name in the same
    folder and renamed onto `path` once complete, so a failure (full disk, Ctrl-C) leaves
    neither a truncated WAV nor the temporary file, and an existing file at `path` stays
    as it was. An `OSError` names `path`.
    """
    path = os.fspath(path)
    sample_rate = _check_rate("sample_rate", sample_rate)
    audio = np.asarray(audio)
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise AudioError(
            f"`write_wav` expects mono audio of shape [T]. Received: audio.shape={audio.shape} "
            f"for path={path!r}"
        )
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"Cannot write audio containing NaN or Inf samples. Received: path={path!r}")
    pcm = float_to_pcm16(audio)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)

    def write(f):
        with wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm.astype("<i2").tobytes())

    _write_atomically(path, write)
    return path


def _write_atomically(path: str, write) -> None:
    """Calls `write(binary_file)` on a temporary file next to `path`, then renames it onto
    `path` (fsynced first); on any failure the temporary file is removed and the error
    re-raised (an `OSError` without a file name gets `path`)."""
    parent = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(parent, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    created = False
    try:
        # os.open with 0o666 gives the file the permissions a plain open() would (umask).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        created = True
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if created:
            try:
                os.remove(tmp)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, tmp):
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), path) from e
        raise


def _kaiser(t: np.ndarray, half_width: float, beta: float) -> np.ndarray:
    r = np.clip(t / half_width, -1.0, 1.0)
    w = np.i0(beta * np.sqrt(1.0 - r * r)) / np.i0(beta)
    return np.where(np.abs(t) <= half_width, w, 0.0)


def resample(
    audio: Any,
    orig_sr: int,
    target_sr: int,
    *,
    num_zeros: int = 64,
    rolloff: float = 0.9475,
    beta: float = 14.77,
) -> np.ndarray:
    """Band-limited resampling of a 1-D signal with a Kaiser-windowed sinc filter.

    Output length is `ceil(T * target_sr / orig_sr)`; output sample `n` is the signal at input
    time `n * orig_sr / target_sr` (no delay). The low-pass cutoff is
    `rolloff * min(orig_sr, target_sr) / 2`; `num_zeros` sinc zero crossings on each side
    (defaults follow resampy's `kaiser_best`). Returns float32.
    """
    orig_sr = _check_rate("orig_sr", orig_sr)
    target_sr = _check_rate("target_sr", target_sr)
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"`resample` expects a 1-D signal. Received: audio.shape={x.shape}")
    if orig_sr == target_sr:
        return x.astype(np.float32)
    g = math.gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    n_out = -(-len(x) * up // down)
    cutoff = rolloff * min(1.0, up / down)  # fraction of the input Nyquist frequency
    half = int(math.ceil(num_zeros / cutoff))  # taps each side, in input samples
    taps = np.arange(-half + 1, half + 1)  # input offsets relative to floor(t)
    xp = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])

    def kernel(frac: np.ndarray) -> np.ndarray:
        t = frac[:, None] - taps[None, :]  # distance from output time to each input sample
        return cutoff * np.sinc(cutoff * t) * _kaiser(t, half / 1.0, beta)

    table = kernel(np.arange(up) / up) if up <= 4096 else None
    out = np.empty(n_out, dtype=np.float64)
    chunk = 8192
    for start in range(0, n_out, chunk):
        n = np.arange(start, min(start + chunk, n_out), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        h = table[phase] if table is not None else kernel(phase / up)
        idx = base[:, None] + taps[None, :] + half
        out[n] = np.einsum("ij,ij->i", xp[idx], h)
    return out.astype(np.float32)
