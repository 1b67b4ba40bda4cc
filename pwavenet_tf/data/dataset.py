"""tf.data pipeline of aligned random windows of (audio, features, speaker id).

`audio_cfg` is any object (or mapping) with the attributes `sample_rate, n_fft, hop_length,
win_length, window, n_mels, fmin, fmax, log_floor, feature_dim` (missing ones take the
`LogMelSpectrogram` defaults; `feature_dim=None` means log-mel features with `n_mels`
bands, an int means external `[frames, feature_dim]` `.npy` features).

Windows: `window_samples = W` (a multiple of `hop`), `W // hop` frames. For an utterance
with `F` frames and a frame offset `o`, the window is audio `[o*hop, o*hop + W)` and
features `[o, o + W // hop)`. Clips shorter than the window are padded at the end with
audio 0 and features `log(log_floor)` (log-mel) or 0 (external features).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.audio.feature_stats import compute_feature_stats
from pwavenet_tf.audio.front_end import (
    audio_settings,
    feature_dim_of,
    feature_pad_value,
    make_log_mel,
)
from pwavenet_tf.audio.log_mel_spectrogram import LogMelSpectrogram
from pwavenet_tf.data.corpus import Utterance

ProgressFn = Callable[[int, int, Utterance], None]
"""`progress(done, total, utterance)` is called after each utterance is processed."""

__all__ = [
    "UtteranceCache",
    "compute_stats_for",
    "load_utterance",
    "make_dataset",
    "random_window",
    "with_data_sharding",
]


def _load_external_features(path: str, num_samples: int, hop: int, feature_dim: int) -> np.ndarray:
    try:
        feats = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"Could not load feature file ({e}). Received: features_path={path!r}") from e
    if feats.ndim != 2:
        raise ValueError(
            f"Feature file must hold a [frames, {feature_dim}] array. "
            f"Received: shape={feats.shape} in features_path={path!r}"
        )
    frames, dim = feats.shape
    if dim != feature_dim:
        raise ValueError(
            f"Feature file has dim {dim} but audio_cfg.feature_dim={feature_dim}. "
            f"Received: shape={feats.shape} in features_path={path!r}"
        )
    if frames != num_samples // hop:
        raise ValueError(
            f"Feature file has F={frames} frames but the audio has {num_samples} samples, i.e. "
            f"{num_samples // hop} frames of hop_length={hop} (need F == len(audio) // hop). "
            f"Received: features_path={path!r}"
        )
    if not np.all(np.isfinite(feats)):
        raise ValueError(f"Feature file contains NaN or Inf. Received: features_path={path!r}")
    return np.ascontiguousarray(feats, dtype=np.float32)


def load_utterance(
    utt: Utterance, audio_cfg: Any, *, mel_layer: LogMelSpectrogram | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Loads `(audio [F * hop], features [F, D])`, both float32, aligned frame by frame.

    With `audio_cfg.feature_dim` set, features come from `utt.features_path` (`.npy`),
    else they are the log-mel of the audio (trimmed to a multiple of hop). `mel_layer`
    may pass a prebuilt `make_log_mel(audio_cfg)` to avoid rebuilding it per call.
    """
    s = audio_settings(audio_cfg)
    hop = s["hop_length"]
    audio = read_audio(utt.audio_path, sample_rate=s["sample_rate"])
    if s["feature_dim"] is not None:
        if utt.features_path is None:
            raise ValueError(
                f"audio_cfg.feature_dim={s['feature_dim']} requires precomputed features, but no "
                f"feature file exists for utterance {utt.id!r}. Received: audio_path={utt.audio_path!r}"
            )
        feats = _load_external_features(utt.features_path, len(audio), hop, s["feature_dim"])
        return audio[: feats.shape[0] * hop], feats
    frames = len(audio) // hop
    audio = audio[: frames * hop]
    layer = mel_layer if mel_layer is not None else make_log_mel(audio_cfg)
    feats = layer(audio[None, :]).numpy()[0]
    return audio, np.ascontiguousarray(feats, dtype=np.float32)


class UtteranceCache:
    """All utterances of a (small) corpus loaded once into memory.

    `cache[i]` is `(audio [F * hop], features [F, D])` of `cache.utterances[i]`.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        audio_cfg: Any,
        progress: ProgressFn | None = None,
    ) -> None:
        self.utterances = list(utterances)
        self.settings = audio_settings(audio_cfg)
        self.feature_dim = feature_dim_of(audio_cfg)
        layer = make_log_mel(audio_cfg) if self.settings["feature_dim"] is None else None
        self._items: list[tuple[np.ndarray, np.ndarray]] = []
        for i, utt in enumerate(self.utterances):
            self._items.append(load_utterance(utt, audio_cfg, mel_layer=layer))
            if progress is not None:
                progress(i + 1, len(self.utterances), utt)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._items[index]

    @property
    def num_samples(self) -> int:
        return sum(len(a) for a, _ in self._items)


def random_window(
    audio: np.ndarray,
    features: np.ndarray,
    window_frames: int,
    hop: int,
    offset: int,
    pad_value: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Audio `[offset*hop, +window_frames*hop)` and features `[offset, +window_frames)`, padded."""
    window = window_frames * hop
    a = audio[offset * hop : offset * hop + window]
    f = features[offset : offset + window_frames]
    if len(f) < window_frames:
        f = np.concatenate(
            [f, np.full((window_frames - len(f), features.shape[1]), pad_value, np.float32)]
        )
    if len(a) < window:
        a = np.concatenate([a, np.zeros(window - len(a), np.float32)])
    return a, f


def _check_window(window_samples: Any, hop: int) -> int:
    if (
        isinstance(window_samples, bool)
        or not isinstance(window_samples, (int, np.integer))
        or window_samples <= 0
        or window_samples % hop
    ):
        raise ValueError(
            f"`window_samples` must be a positive multiple of hop_length={hop}. "
            f"Received: window_samples={window_samples!r}"
        )
    return int(window_samples)


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def make_dataset(
    utterances: Sequence[Utterance],
    audio_cfg: Any,
    window_samples: int,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    repeat: bool = True,
    drop_remainder: bool = True,
    cache: UtteranceCache | bool | None = None,
    start_step: int = 0,
) -> tf.data.Dataset:
    """Batches of random aligned windows: `({"audio", "features", "speaker_id"}, audio)`.

    Shapes: audio `[B, W]` float32, features `[B, W // hop, D]` float32, speaker_id `[B]`
    int32; the target is the same audio. Each epoch visits every utterance once (in a
    seeded random order if `shuffle`, else in the given order) at a seeded random frame
    offset; `repeat=True` chains epochs forever (each epoch differs). Every example is a
    deterministic function of `seed` and its index in the stream, and `start_step` starts
    the stream at batch `start_step` (what a run resumed at that step sees next: the same
    batches an uninterrupted run sees at those steps).

    `cache`: an `UtteranceCache` of exactly these utterances, `True` to build one now
    (loads the whole corpus into memory), or `None`/`False` to read each utterance from disk
    when it is drawn (no memory cost, slower).
    """
    utterances = list(utterances)
    if not utterances:
        raise ValueError("`utterances` is empty. Received: utterances=[]")
    s = audio_settings(audio_cfg)
    hop = s["hop_length"]
    window_samples = _check_window(window_samples, hop)
    batch_size = _check_positive("batch_size", batch_size)
    if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) or start_step < 0:
        raise ValueError(f"`start_step` must be an integer >= 0. Received: start_step={start_step!r}")
    start_step = int(start_step)
    if not repeat and drop_remainder and len(utterances) < batch_size:
        raise ValueError(
            f"With repeat=False and drop_remainder=True, {len(utterances)} utterances make no "
            f"full batch. Received: batch_size={batch_size}"
        )
    window_frames = window_samples // hop
    dim = feature_dim_of(audio_cfg)
    pad_value = feature_pad_value(audio_cfg)

    if cache is True:
        cache = UtteranceCache(utterances, audio_cfg)
    if isinstance(cache, UtteranceCache):
        if cache.utterances != utterances or cache.settings != s:
            raise ValueError(
                "`cache` was built for other utterances or audio settings. "
                f"Received: cache with {len(cache)} utterances for {len(utterances)} utterances"
            )
        load: Callable[[int], tuple[np.ndarray, np.ndarray]] = cache.__getitem__
    elif cache is None or cache is False:
        layer = make_log_mel(audio_cfg) if s["feature_dim"] is None else None
        load = lambda i: load_utterance(utterances[i], audio_cfg, mel_layer=layer)  # noqa: E731
    else:
        raise ValueError(f"`cache` must be an UtteranceCache, a bool or None. Received: cache={cache!r}")
    speakers = np.array([u.speaker_id for u in utterances], np.int32)
    n = len(utterances)

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray, np.int32]]:
        # Example k of the stream (k = step * batch_size + j) is a pure function of (seed,
        # k): its epoch's order comes from default_rng([seed, epoch]) and its crop from
        # default_rng([seed, epoch, position]), so a stream started at `start_step` is the
        # tail of the stream started at 0 (exact resume).
        k = start_step * batch_size
        while True:
            epoch, position = divmod(k, n)
            if not repeat and epoch > 0:
                return
            order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else None
            i = int(order[position]) if shuffle else position
            audio, feats = load(i)
            crop = np.random.default_rng([seed, epoch, position])
            offset = int(crop.integers(0, max(len(feats) - window_frames, 0) + 1))
            a, f = random_window(audio, feats, window_frames, hop, offset, pad_value)
            yield a, f, speakers[i]
            k += 1

    ds = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec([window_samples], tf.float32),
            tf.TensorSpec([window_frames, dim], tf.float32),
            tf.TensorSpec([], tf.int32),
        ),
    )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(
        lambda a, f, spk: ({"audio": a, "features": f, "speaker_id": spk}, a),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def with_data_sharding(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with `AutoShardPolicy.DATA`: how it is split over workers (`data/shard_dataset.py`).

    Under `MultiWorkerMirroredStrategy`, Keras' `fit` distributes the dataset with the
    default `AUTO` policy, which finds the shard stream's `flat_map` over epochs and shards
    it as if its input were file names: worker 0 read the even epochs, worker 1 the odd
    ones, each in full, so the workers' batches were not the halves of the one-process global batch
    and a resumed run (`start_step`) restarted the workers at other examples. With `DATA`
    every worker runs the same global stream and keeps its replicas' slices of each batch
    (for the in-memory `make_dataset` stream, `AUTO` already fell back to `DATA`; it is
    now explicit for both).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def compute_stats_for(
    utterances: Sequence[Utterance],
    audio_cfg: Any,
    cache: UtteranceCache | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """Feature mean/std (see `compute_feature_stats`) over all frames of `utterances`."""
    utterances = list(utterances)
    if cache is not None:
        if cache.utterances != utterances:
            raise ValueError("`cache` was built for other utterances. Received: mismatching cache")
        return compute_feature_stats(cache[i][1] for i in range(len(cache)))
    layer = make_log_mel(audio_cfg) if audio_settings(audio_cfg)["feature_dim"] is None else None

    def features() -> Iterator[np.ndarray]:
        for i, utt in enumerate(utterances):
            yield load_utterance(utt, audio_cfg, mel_layer=layer)[1]
            if progress is not None:
                progress(i + 1, len(utterances), utt)

    return compute_feature_stats(features())
