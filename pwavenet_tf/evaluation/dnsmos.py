"""DNSMOS P.808 and P.835 scores (optional: `pip install "pwavenet_tf[eval]"`).

The DNSMOS models (Microsoft's ONNX files) ship inside the `speechmos` package; they are
run here with `onnxruntime`, following `speechmos.dnsmos` (itself Microsoft's
`dnsmos_local.py`): audio at 16 kHz, scored on 9.01 s windows hopped by 1 s (shorter
clips are repeated up to 9.01 s), the scores averaged over windows.
- P.835 (`sig_bak_ovr.onnx`, raw waveform input): SIG (speech), BAK (background), OVRL
  (overall), each mapped through DNSMOS's published polynomial calibration.
- P.808 (`model_v8.onnx`): overall MOS from a 120-band mel spectrogram (n_fft 321, hop
  160, Slaney mel scale and normalisation, power, in dB relative to the window's
  maximum, 80 dB range, then (dB + 40) / 40), computed here in numpy exactly as
  `librosa.feature.melspectrogram` and `librosa.power_to_db` do, so that librosa (which
  `speechmos.dnsmos` imports) is not needed.

Both dependencies are imported lazily; `DNSMOS.create()` returns None with a reason
(`unavailable_reason()`) when either is missing, and callers skip the scores with a note.
"""

import importlib.util
import os

import numpy as np

SAMPLE_RATE = 16000
INPUT_LENGTH = 9.01
# DNSMOS P.835 calibration polynomials (highest power first), non-personalised models.
P835_POLY = {
    "sig": (-0.08397278, 1.22083953, 0.0052439),
    "bak": (-0.13166888, 1.60915514, -0.39604546),
    "ovrl": (-0.06766283, 1.11546468, 0.04602535),
}
INSTALL_HINT = 'pip install "pwavenet_tf[eval]"  (speechmos and onnxruntime)'


def _models_dir():
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "dnsmos_models")


def unavailable_reason():
    """None when DNSMOS can run, else why not (a sentence naming the missing package)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return f"onnxruntime is not installed; {INSTALL_HINT}"
    d = _models_dir()
    if d is None:
        return f"speechmos (which ships the DNSMOS models) is not installed; {INSTALL_HINT}"
    for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
        if not os.path.isfile(os.path.join(d, name)):
            return f"the speechmos package has no {name} in {d}"
    return None


# --------------------------------------------------------------------------- P.808 features


def _hz_to_mel_slaney(f):
    f = np.asarray(f, dtype="float64")
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m):
    m = np.asarray(m, dtype="float64")
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_filterbank(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    """`[n_mels, n_fft // 2 + 1]` filterbank equal to librosa's `filters.mel` defaults."""
    fmax = sr / 2.0 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax),
                                          n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype("float32")


def p808_features(audio, n_mels=120, frame_size=320, hop_length=160, sr=SAMPLE_RATE):
    """`[frames, n_mels]` input of the P.808 model (librosa-compatible, see module doc)."""
    n_fft = frame_size + 1
    y = np.asarray(audio, dtype="float32")
    pad = n_fft // 2
    y = np.pad(y, (pad, pad), mode="constant")
    frames = 1 + (len(y) - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(frames)[:, None]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype("float32")
    spec = np.abs(np.fft.rfft(y[idx] * window, n=n_fft, axis=-1)) ** 2  # [frames, bins]
    mel = spec @ slaney_mel_filterbank(sr, n_fft, n_mels).T.astype("float64")
    amin, top_db = 1e-10, 80.0
    db = 10.0 * np.log10(np.maximum(amin, mel)) - 10.0 * np.log10(max(amin, mel.max()))
    db = np.maximum(db, db.max() - top_db)
    return ((db + 40.0) / 40.0).astype("float32")


# --------------------------------------------------------------------------- scorer


class DNSMOS:
    """Runs the DNSMOS P.835 and P.808 ONNX models on mono audio."""

    def __init__(self, models_dir, num_threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        providers = ["CPUExecutionProvider"]
        self.p835 = ort.InferenceSession(os.path.join(models_dir, "sig_bak_ovr.onnx"),
                                         options, providers=providers)
        self.p808 = ort.InferenceSession(os.path.join(models_dir, "model_v8.onnx"),
                                         options, providers=providers)

    @classmethod
    def create(cls, num_threads=None):
        """A scorer, or None when speechmos or onnxruntime is missing."""
        if unavailable_reason() is not None:
            return None
        return cls(_models_dir(), num_threads)

    def score(self, audio, sample_rate):
        """`{"p808_mos", "p835_sig", "p835_bak", "p835_ovrl"}` of mono audio in [-1, 1]."""
        audio = np.clip(np.asarray(audio, dtype="float32").reshape(-1), -1.0, 1.0)
        if audio.size == 0 or not np.all(np.isfinite(audio)):
            raise ValueError("DNSMOS needs non-empty, finite audio.")
        if sample_rate != SAMPLE_RATE:
            from pwavenet_tf.audio.audio_io import resample

            audio = resample(audio, sample_rate, SAMPLE_RATE)
        length = int(INPUT_LENGTH * SAMPLE_RATE)
        while len(audio) < length:
            audio = np.concatenate([audio, audio])
        hops = int(np.floor(len(audio) / SAMPLE_RATE) - INPUT_LENGTH) + 1
        scores = {"p808_mos": [], "p835_sig": [], "p835_bak": [], "p835_ovrl": []}
        for i in range(hops):
            seg = audio[i * SAMPLE_RATE: i * SAMPLE_RATE + length]
            if len(seg) < length:
                continue
            p808 = self.p808.run(None, {"input_1": p808_features(seg[:-160])[None]})[0]
            raw = self.p835.run(None, {"input_1": seg[None].astype("float32")})[0][0]
            scores["p808_mos"].append(float(p808[0][0]))
            for key, value in zip(("sig", "bak", "ovrl"), raw):
                scores[f"p835_{key}"].append(float(np.polyval(P835_POLY[key], value)))
        return {k: float(np.mean(v)) for k, v in scores.items()}
