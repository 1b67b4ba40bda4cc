"""Frame labels for the perceptual loss's phone classifier, and its training.

Parallel WaveNet's perceptual loss needs a classifier of phonetic content
(`pwavenet_tf.models.PhoneClassifier`). Phone labels are not bundled with the corpora this
project uses, so the default is label-free: **pseudo-phones**, the k-means clusters of MFCC
frames (MFCCs are the classic phonetic front end; their clusters mostly separate vowels,
fricatives, stops and silence). When real labels exist they are read from a file instead:

Label file formats (`read_frame_labels`):
- `.npy`: a 1-D integer array, one class per frame.
- text, one integer class per line (one line per frame).
- text forced alignment, lines `start_sec end_sec phone` (e.g. a Montreal Forced Aligner
  or HTK export converted to seconds; HTK's 100 ns units must be divided by 1e7 first).
  Frame `i` (samples `[i * hop, (i + 1) * hop)`) gets the phone whose segment contains its
  centre `(i + 0.5) * hop / sample_rate`. The phone -> id map is built from the data
  (`read_alignment` returns it, `build_phone_map` scans many files) or read with
  `read_label_map`.
In all text formats blank lines and everything after `#` are ignored. A label count that
differs from the number of frames, a negative or non-integer label, an unsorted or
overlapping alignment, or an alignment that does not cover the audio is a `ValueError`.

Label map format (`read_label_map` / `write_label_map`): one phone per line, either
`phone id` or just `phone` (id = its line index among the non-blank lines), or a `.json`
object `{"phone": id}`.

Pipeline: `build_pseudo_phone_labels([(audio, log_mel), ...])` -> per-utterance labels and
the k-means model (`mfcc_frames` -> `kmeans` -> `assign`); then
`train_phone_classifier([(audio, labels), ...], num_classes, hop_length)` trains the
classifier on random aligned windows with `model.fit` and reports its frame accuracy next
to the majority-class (chance) accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from pwavenet_tf.models.phone_classifier import PhoneClassifier

__all__ = [
    "KMeansModel",
    "assign",
    "build_phone_map",
    "build_pseudo_phone_labels",
    "kmeans",
    "mfcc_frames",
    "read_alignment",
    "read_frame_labels",
    "read_label_map",
    "train_phone_classifier",
    "write_label_map",
]


# ---------------------------------------------------------------------------- MFCC


def _dct_matrix(n: int, num_coeffs: int) -> np.ndarray:
    """Orthonormal DCT-II `[n, num_coeffs]`: c = x @ M."""
    k = np.arange(num_coeffs)[None, :]
    m = np.arange(n)[:, None]
    mat = np.sqrt(2.0 / n) * np.cos(np.pi * k * (m + 0.5) / n)
    mat[:, 0] *= 1.0 / np.sqrt(2.0)
    return mat


def mfcc_frames(log_mel: Any, num_coeffs: int = 13) -> np.ndarray:
    """MFCCs `[..., num_coeffs]` of natural-log mel frames `[..., n_mels]` (float32 numpy).

    Orthonormal DCT-II over the mel axis, first `num_coeffs` coefficients (c0, the log
    energy, included).
    """
    x = np.asarray(keras.ops.convert_to_numpy(log_mel), dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"`log_mel` must be [..., n_mels]. Received: shape={x.shape}")
    n_mels = x.shape[-1]
    if (isinstance(num_coeffs, bool) or not isinstance(num_coeffs, int)
            or not 1 <= num_coeffs <= n_mels):
        raise ValueError(
            f"`num_coeffs` must be an integer in [1, n_mels={n_mels}]. "
            f"Received: num_coeffs={num_coeffs!r}"
        )
    return (x @ _dct_matrix(n_mels, num_coeffs)).astype(np.float32)


# ---------------------------------------------------------------------------- k-means


@dataclasses.dataclass
class KMeansModel:
    """k-means centroids in standardised feature space, with the standardisation.

    `centroids` `[K, D]` live in the space `(x - mean) / std`; `mean`, `std` `[D]`.
    """

    centroids: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    inertia: float = float("nan")

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.shape[0])

    def save(self, path: str) -> str:
        """Writes an `.npz` archive (the suffix is added if missing); returns the path."""
        path = str(path)
        if not path.endswith(".npz"):
            path += ".npz"
        np.savez(path, centroids=self.centroids, mean=self.mean, std=self.std,
                 inertia=np.float64(self.inertia))
        return path

    @classmethod
    def load(cls, path: str) -> "KMeansModel":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["centroids"], data["mean"], data["std"], float(data["inertia"]))


def _check_features(features: Any, name: str = "features") -> np.ndarray:
    x = np.asarray(keras.ops.convert_to_numpy(features), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array [N, D]. Received: shape={x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or Inf values.")
    return x


def _sq_distances(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d = (np.sum(z * z, axis=1, keepdims=True) - 2.0 * z @ centroids.T
         + np.sum(centroids * centroids, axis=1)[None, :])
    return np.maximum(d, 0.0)


def _nearest(z: np.ndarray, centroids: np.ndarray, chunk: int = 32768):
    labels = np.empty(z.shape[0], dtype=np.int64)
    dists = np.empty(z.shape[0], dtype=np.float64)
    for s in range(0, z.shape[0], chunk):
        d = _sq_distances(z[s : s + chunk], centroids)
        labels[s : s + chunk] = np.argmin(d, axis=1)
        dists[s : s + chunk] = d[np.arange(d.shape[0]), labels[s : s + chunk]]
    return labels, dists


def _kmeans_plus_plus(z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ (2 + log k candidates per step, keep the best)."""
    n = z.shape[0]
    n_local = 2 + int(math.log(k))
    centroids = [z[rng.integers(n)]]
    closest = _sq_distances(z, centroids[0][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0.0:  # fewer distinct points than clusters: duplicate ones
            centroids.append(z[rng.integers(n)])
            continue
        candidates = rng.choice(n, size=n_local, p=closest / total)
        d = _sq_distances(z, z[candidates])  # [n, n_local]
        new_closest = np.minimum(closest[:, None], d)
        best = int(np.argmin(new_closest.sum(axis=0)))
        centroids.append(z[candidates[best]])
        closest = new_closest[:, best]
    return np.stack(centroids)


def kmeans(features: Any, num_clusters: int, seed: int = 0, iterations: int = 25) -> KMeansModel:
    """k-means (Lloyd, k-means++ init) of `features` `[N, D]` after standardisation.

    Deterministic for a given `seed`. Empty clusters are re-seeded with the point farthest
    from its centroid. Stops early when the assignment no longer changes.
    """
    x = _check_features(features)
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or num_clusters < 1:
        raise ValueError(
            f"`num_clusters` must be an integer >= 1. Received: num_clusters={num_clusters!r}"
        )
    if x.shape[0] < num_clusters:
        raise ValueError(
            f"k-means needs at least `num_clusters` points. Received: {x.shape[0]} points, "
            f"num_clusters={num_clusters}"
        )
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(
            f"`iterations` must be an integer >= 1. Received: iterations={iterations!r}"
        )
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    z = (x - mean) / std
    rng = np.random.default_rng(seed)
    centroids = _kmeans_plus_plus(z, num_clusters, rng)
    labels = None
    for _ in range(iterations):
        new_labels, dists = _nearest(z, centroids)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=num_clusters)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, z)
        for c in range(num_clusters):
            if counts[c]:
                centroids[c] = sums[c] / counts[c]
            else:
                far = int(np.argmax(dists))
                centroids[c] = z[far]
                dists[far] = 0.0
    _, dists = _nearest(z, centroids)
    return KMeansModel(centroids.astype(np.float32), mean.astype(np.float32),
                       std.astype(np.float32), float(dists.sum()))


def assign(features: Any, model: KMeansModel) -> np.ndarray:
    """Nearest-centroid labels int32 `[N]` of `features` `[N, D]` under `model`."""
    x = _check_features(features)
    if x.shape[1] != model.centroids.shape[1]:
        raise ValueError(
            f"`features` have {x.shape[1]} dims but the k-means model has "
            f"{model.centroids.shape[1]}. Received: shape={x.shape}"
        )
    z = (x - model.mean) / model.std
    labels, _ = _nearest(z, model.centroids.astype(np.float64))
    return labels.astype(np.int32)


def build_pseudo_phone_labels(
    examples_audio_and_logmel: Sequence[Any],
    num_clusters: int = 32,
    seed: int = 0,
    num_coeffs: int = 13,
    iterations: int = 25,
) -> tuple[list[np.ndarray], KMeansModel]:
    """Pseudo-phone labels by k-means of MFCC frames over a set of utterances.

    `examples_audio_and_logmel`: a list of `(audio, log_mel [F, n_mels])` pairs (as
    `pwavenet_tf.data.dataset.load_utterance` returns them) or of bare `log_mel` arrays;
    only the log-mel is used. Returns the int32 labels `[F]` of every utterance and the
    k-means model (to label new audio: `assign(mfcc_frames(log_mel), model)`).
    """
    log_mels = []
    for i, item in enumerate(examples_audio_and_logmel):
        log_mel = item[1] if isinstance(item, (tuple, list)) else item
        log_mel = np.asarray(keras.ops.convert_to_numpy(log_mel))
        if log_mel.ndim != 2:
            raise ValueError(
                f"Example {i}: log-mel must be [frames, n_mels]. Received: shape={log_mel.shape}"
            )
        log_mels.append(log_mel)
    if not log_mels:
        raise ValueError("`examples_audio_and_logmel` is empty.")
    mfccs = [mfcc_frames(m, num_coeffs) for m in log_mels]
    model = kmeans(np.concatenate(mfccs, axis=0), num_clusters, seed=seed, iterations=iterations)
    return [assign(m, model) for m in mfccs], model


# ---------------------------------------------------------------------------- label files


def _text_lines(path: str) -> list[tuple[int, list[str]]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Label file not found. Received: path={path!r}")
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            tokens = line.split("#", 1)[0].split()
            if tokens:
                out.append((lineno, tokens))
    return out


def _check_labels(labels: np.ndarray, num_frames: Any, path: str) -> np.ndarray:
    if labels.ndim != 1:
        raise ValueError(f"Frame labels must be 1-D. Received: shape={labels.shape} in {path!r}")
    if num_frames is not None and labels.shape[0] != int(num_frames):
        raise ValueError(
            f"Label file has {labels.shape[0]} frame labels but the audio has {int(num_frames)} "
            f"frames. Received: path={path!r}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(
            f"Frame labels must be >= 0. Received: label {int(labels.min())} in {path!r}"
        )
    return labels.astype(np.int32)


def _is_alignment(lines) -> bool:
    return bool(lines) and all(len(tokens) == 3 for _, tokens in lines)


def read_frame_labels(
    path: str,
    num_frames: int | None,
    sample_rate: int | None = None,
    hop_length: int | None = None,
    phone_map: dict | None = None,
) -> np.ndarray:
    """Per-frame int32 labels `[num_frames]` from a label file (formats: module docstring).

    `num_frames=None` skips the count check (integer formats only). Alignment files need
    `sample_rate` and `hop_length`; their phones are numbered with `phone_map`, which is
    extended in place with unseen phones (use `read_alignment` to get the map returned).
    """
    path = os.fspath(path)
    if path.endswith(".npy"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Label file not found. Received: path={path!r}")
        arr = np.load(path, allow_pickle=False)
        if arr.dtype.kind in "ui":
            pass
        elif arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(
                f"Frame labels must be integers. Received: dtype={arr.dtype} in {path!r}"
            )
        return _check_labels(arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr,
                             num_frames, path)
    lines = _text_lines(path)
    if _is_alignment(lines):
        if sample_rate is None or hop_length is None or num_frames is None:
            raise ValueError(
                f"{path!r} is a forced alignment (start end phone): pass `num_frames`, "
                f"`sample_rate` and `hop_length`."
            )
        labels, new_map = read_alignment(path, num_frames, sample_rate, hop_length, phone_map)
        if phone_map is not None:
            phone_map.update(new_map)
        return labels
    values = []
    for lineno, tokens in lines:
        if len(tokens) != 1:
            raise ValueError(
                f"Expected one integer label per line (or `start end phone` on every line). "
                f"Received: {' '.join(tokens)!r} at {path}:{lineno}"
            )
        try:
            values.append(int(tokens[0]))
        except ValueError:
            raise ValueError(
                f"Frame labels must be integers. Received: {tokens[0]!r} at {path}:{lineno}"
            ) from None
    return _check_labels(np.asarray(values, dtype=np.int64), num_frames, path)


def _parse_alignment(path: str) -> list[tuple[float, float, str]]:
    segments = []
    for lineno, tokens in _text_lines(path):
        if len(tokens) != 3:
            raise ValueError(
                f"Alignment lines must be `start_sec end_sec phone`. "
                f"Received: {' '.join(tokens)!r} at {path}:{lineno}"
            )
        try:
            start, end = float(tokens[0]), float(tokens[1])
        except ValueError:
            raise ValueError(
                f"Alignment times must be numbers (seconds). Received: {' '.join(tokens[:2])!r} "
                f"at {path}:{lineno}"
            ) from None
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
            raise ValueError(
                f"Alignment segments need 0 <= start < end. Received: start={start}, end={end} "
                f"at {path}:{lineno}"
            )
        if segments and start < segments[-1][1] - 1e-6:
            raise ValueError(
                f"Alignment segments must be sorted and not overlap. Received: start={start} < "
                f"previous end={segments[-1][1]} at {path}:{lineno}"
            )
        segments.append((start, end, tokens[2]))
    if not segments:
        raise ValueError(f"Alignment file has no segments. Received: path={path!r}")
    return segments


def build_phone_map(alignment_paths: Sequence[str]) -> dict:
    """`{phone: id}` over all phones of the alignment files, ids in sorted phone order."""
    phones = set()
    for path in alignment_paths:
        phones.update(p for _, _, p in _parse_alignment(os.fspath(path)))
    return {p: i for i, p in enumerate(sorted(phones))}


def read_alignment(
    path: str,
    num_frames: int,
    sample_rate: int,
    hop_length: int,
    phone_map: dict | None = None,
    fill_phone: str | None = None,
) -> tuple[np.ndarray, dict]:
    """Per-frame labels int32 `[num_frames]` from a `start_sec end_sec phone` alignment.

    Returns `(labels, phone_map)`: a copy of `phone_map` (or a new map) extended with the
    phones first seen in this file (next ids, in order of appearance); pass it to the next
    call to number a corpus consistently (or use `build_phone_map` first). A frame whose
    centre lies in no segment gets `fill_phone` when given, else it is an error, except
    that the first/last segment is extended by up to one frame (or 25 ms) to absorb
    rounding at the ends. An alignment longer than the audio by more than that is an error.
    """
    path = os.fspath(path)
    for name, value in (("num_frames", num_frames), ("sample_rate", sample_rate),
                        ("hop_length", hop_length)):
        minimum = 0 if name == "num_frames" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(
                f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
            )
    segments = _parse_alignment(path)
    phone_map = dict(phone_map or {})
    for _, _, phone in segments:
        if phone not in phone_map:
            phone_map[phone] = max(phone_map.values(), default=-1) + 1
    frame_sec = hop_length / sample_rate
    duration = num_frames * frame_sec
    tol = max(frame_sec, 0.025)
    if segments[-1][1] > duration + tol:
        raise ValueError(
            f"Alignment ends at {segments[-1][1]:.3f} s but the audio lasts {duration:.3f} s "
            f"({num_frames} frames of {hop_length} samples at {sample_rate} Hz). "
            f"Received: path={path!r}"
        )
    starts = np.array([s for s, _, _ in segments])
    ends = np.array([e for _, e, _ in segments])
    ends[-1] = max(ends[-1], duration + tol)
    starts[0] = min(starts[0], tol)
    ids = np.array([phone_map[p] for _, _, p in segments], dtype=np.int64)
    centres = (np.arange(num_frames) + 0.5) * frame_sec
    seg = np.searchsorted(starts, centres, side="right") - 1
    covered = (seg >= 0) & (centres < ends[np.maximum(seg, 0)])
    labels = np.where(covered, ids[np.maximum(seg, 0)], -1)
    if not covered.all():
        if fill_phone is None:
            first = int(np.argmin(covered))
            raise ValueError(
                f"Frame {first} (centre {centres[first]:.3f} s) is in no alignment segment; "
                f"pass `fill_phone` to label gaps. Received: path={path!r}"
            )
        if fill_phone not in phone_map:
            phone_map[fill_phone] = max(phone_map.values(), default=-1) + 1
        labels = np.where(covered, labels, phone_map[fill_phone])
    return labels.astype(np.int32), phone_map


def read_label_map(path: str) -> dict:
    """`{phone: id}` from a label map file (format: module docstring)."""
    path = os.fspath(path)
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(
                f"A JSON label map must be an object {{phone: id}}. Received: {path!r}"
            )
        items = list(data.items())
    else:
        items = []
        for index, (lineno, tokens) in enumerate(_text_lines(path)):
            if len(tokens) == 1:
                items.append((tokens[0], index))
            elif len(tokens) == 2:
                items.append((tokens[0], tokens[1]))
            else:
                raise ValueError(
                    f"Label map lines must be `phone` or `phone id`. "
                    f"Received: {' '.join(tokens)!r} at {path}:{lineno}"
                )
    out = {}
    for name, value in items:
        try:
            ident = int(value)
            if ident != float(value) or ident < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(
                f"Label ids must be integers >= 0. Received: {name}={value!r} in {path!r}"
            ) from None
        if name in out:
            raise ValueError(f"Duplicate phone in label map. Received: {name!r} in {path!r}")
        out[name] = ident
    if len(set(out.values())) != len(out):
        raise ValueError(f"Label map ids must be unique. Received: {path!r}")
    return out


def write_label_map(path: str, phone_map: dict) -> str:
    """Writes `phone id` lines (sorted by id), or JSON when `path` ends with `.json`."""
    path = os.fspath(path)
    items = sorted(phone_map.items(), key=lambda kv: kv[1])
    with open(path, "w", encoding="utf-8") as f:
        if path.endswith(".json"):
            json.dump({k: int(v) for k, v in items}, f, indent=1)
        else:
            f.writelines(f"{k} {int(v)}\n" for k, v in items)
    return path


# ---------------------------------------------------------------------------- training


def _check_examples(examples, num_classes, hop_length):
    out = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, (tuple, list)) or len(ex) != 2:
            raise ValueError(f"Examples must be (audio, labels) pairs. Received: example {i}")
        audio = np.asarray(keras.ops.convert_to_numpy(ex[0]), dtype=np.float32)
        labels = np.asarray(keras.ops.convert_to_numpy(ex[1]))
        if audio.ndim != 1 or labels.ndim != 1:
            raise ValueError(
                f"Example {i}: audio and labels must be 1-D. Received: audio.shape={audio.shape}, "
                f"labels.shape={labels.shape}"
            )
        if labels.dtype.kind not in "ui":
            raise ValueError(
                f"Example {i}: labels must be integers. Received: dtype={labels.dtype}"
            )
        if audio.shape[0] // hop_length != labels.shape[0]:
            raise ValueError(
                f"Example {i}: audio of {audio.shape[0]} samples has "
                f"{audio.shape[0] // hop_length} frames of hop_length={hop_length}, but "
                f"{labels.shape[0]} labels were given."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"Example {i}: labels must be in [0, num_classes={num_classes}). "
                f"Received: min={labels.min()}, max={labels.max()}"
            )
        out.append((audio[: labels.shape[0] * hop_length], labels.astype(np.int32)))
    if not out:
        raise ValueError("`examples` is empty.")
    return out


def train_phone_classifier(
    examples: Sequence[tuple[Any, Any]],
    num_classes: int,
    hop_length: int,
    steps: int = 200,
    batch_size: int = 8,
    window_frames: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    verbose: int = 0,
    classifier_kwargs: dict | None = None,
    max_eval_examples: int = 64,
) -> tuple[PhoneClassifier, dict]:
    """Trains a `PhoneClassifier` on `(audio [F * hop], labels [F])` examples.

    Each step is a batch of `batch_size` random windows of `window_frames` frames (and the
    aligned `window_frames * hop_length` samples), drawn uniformly over all window
    positions of all utterances long enough, from a numpy generator seeded by `seed` (the
    weight initialisation is seeded too). Adam, sparse softmax cross-entropy, `model.fit`.

    Returns `(classifier, metrics)`: `train_accuracy` is the frame accuracy of the trained
    classifier on the full training utterances (the first `max_eval_examples`),
    `chance_accuracy` the frequency of the most common class on those same frames,
    `loss` the mean training loss of the run and `steps` the number of steps.
    """
    for name, value in (("num_classes", num_classes), ("hop_length", hop_length),
                        ("steps", steps), ("batch_size", batch_size),
                        ("window_frames", window_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    examples = _check_examples(examples, num_classes, hop_length)
    lengths = np.array([lab.shape[0] for _, lab in examples])
    positions = np.maximum(lengths - window_frames + 1, 0)
    if positions.sum() == 0:
        raise ValueError(
            f"No utterance has `window_frames={window_frames}` frames (longest: "
            f"{lengths.max()}); lower window_frames."
        )
    probs = positions / positions.sum()
    window_samples = window_frames * hop_length

    def batches():
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            utts = rng.choice(len(examples), size=batch_size, p=probs)
            audio = np.empty((batch_size, window_samples), np.float32)
            labels = np.empty((batch_size, window_frames), np.int32)
            for b, u in enumerate(utts):
                start = int(rng.integers(positions[u]))
                audio[b] = examples[u][0][start * hop_length : start * hop_length + window_samples]
                labels[b] = examples[u][1][start : start + window_frames]
            yield audio, labels

    dataset = tf.data.Dataset.from_generator(
        batches,
        output_signature=(
            tf.TensorSpec((batch_size, window_samples), tf.float32),
            tf.TensorSpec((batch_size, window_frames), tf.int32),
        ),
    )
    kwargs = dict(classifier_kwargs or {})
    kwargs.setdefault("seed", seed)
    classifier = PhoneClassifier(num_classes, hop_length, **kwargs)
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = classifier.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=verbose)

    correct = total = 0
    counts = np.zeros(num_classes, np.int64)
    for audio, labels in examples[:max_eval_examples]:
        logits = keras.ops.convert_to_numpy(classifier(audio[None], training=False))[0]
        correct += int(np.sum(np.argmax(logits, axis=-1) == labels))
        total += labels.shape[0]
        counts += np.bincount(labels, minlength=num_classes)
    metrics = {
        "train_accuracy": correct / max(total, 1),
        "chance_accuracy": float(counts.max()) / max(total, 1),
        "loss": float(history.history["loss"][-1]),
        "steps": steps,
    }
    return classifier, metrics
