"""`pwavenet prepare-data`: a corpus decoded once into TFRecord shards and a manifest.

Each clip is decoded, resampled and its features computed once (`load_utterance`, the
same front end as training from audio files), then written as one `tf.train.Example`:

- `id` (bytes), `speaker_id` (int64), `num_frames` F and `feature_dim` D (int64);
- `audio_pcm16` (bytes, little-endian int16 codes of `F * hop` samples) when the audio
  lies exactly on the 16-bit grid (16-bit sources at their own rate, e.g. LJ Speech), else
  `audio_f32` (little-endian float32): either way the stored audio is bit-identical to
  what the in-memory path trains on;
- `features` (bytes, little-endian float32 `[F, D]`).

Layout of the output folder:

- `train-00000.tfrecord, ...` and `valid-00000.tfrecord, ...`: the training clips and the
  held-out validation clips (`split_corpus(utterances, num_validation, seed)`, as the
  in-memory path splits), in corpus order, each shard closed before it would pass
  `shard_bytes` (a single larger clip gets a shard of its own);
- `.parts/<shard>.json`: what each finished shard holds (ids, sizes, partial feature
  statistics): how a re-run knows which shards are complete and skips them;
- `manifest.json` (written last, atomically): clip counts, durations, the shard list,
  the feature statistics of the training clips (mean/std, one streaming pass, merged
  from the shards' partial sums), the effective audio settings and their hash.

Every shard is written under a temporary name and renamed when complete, so an
interrupted run leaves only complete shards behind, and re-running resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from pwavenet_tf.atomic_files import write_json
from pwavenet_tf.audio.feature_stats import STD_FLOOR
from pwavenet_tf.audio.front_end import (
    audio_settings,
    feature_dim_of,
    feature_pad_value,
    make_log_mel,
)
from pwavenet_tf.audio.quantize import float_to_pcm16, pcm16_to_float
from pwavenet_tf.data.corpus import list_corpus, split_corpus
from pwavenet_tf.data.dataset import load_utterance

MANIFEST_NAME = "manifest.json"
PARTS_DIR = ".parts"
FORMAT = "pwavenet_tf.shards/1"
DEFAULT_SHARD_BYTES = 128 * 1024 * 1024
_SHARD_RE = re.compile(r"^(train|valid)-(\d{5})\.tfrecord$")

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "FORMAT",
    "MANIFEST_NAME",
    "ShardError",
    "ShardSettingsError",
    "is_shard_folder",
    "load_shard_manifest",
    "prepare_shards",
    "settings_hash",
]

Progress = Callable[[int, int, str], None]
"""`progress(done, total, message)`: after each clip, written or found in a complete shard."""


class ShardError(ValueError):
    """A shard folder is missing, incomplete, corrupt or inconsistent."""


class ShardSettingsError(ShardError):
    """Shards were prepared with other feature settings than the config's."""


def settings_hash(audio_cfg: Any) -> str:
    """Hash of the effective feature settings (`audio_settings`) the shards depend on."""
    text = json.dumps(audio_settings(audio_cfg), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))


def encode_clip(utt_id: str, speaker_id: int, audio: np.ndarray, feats: np.ndarray) -> bytes:
    """One serialized record (see the module docstring)."""
    codes = float_to_pcm16(audio)
    lossless = np.array_equal(pcm16_to_float(codes), audio)
    fields = {
        "id": _bytes(utt_id.encode("utf-8")),
        "speaker_id": _int(speaker_id),
        "features": _bytes(np.ascontiguousarray(feats, "<f4").tobytes()),
        "num_frames": _int(feats.shape[0]),
        "feature_dim": _int(feats.shape[1]),
    }
    if lossless:
        fields["audio_pcm16"] = _bytes(codes.astype("<i2").tobytes())
    else:
        fields["audio_f32"] = _bytes(np.ascontiguousarray(audio, "<f4").tobytes())
    return tf.train.Example(features=tf.train.Features(feature=fields)).SerializeToString()


class _Moments:
    """Streaming per-dimension count/mean/M2 in float64 (the update of `compute_feature_stats`)."""

    def __init__(self, count=0, mean=None, m2=None):
        self.count = int(count)
        self.mean = None if mean is None else np.asarray(mean, np.float64)
        self.m2 = None if m2 is None else np.asarray(m2, np.float64)

    def merge(self, n, b_mean, b_m2):
        if n == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = int(n), np.array(b_mean, np.float64), np.array(b_m2, np.float64)
            return
        total = self.count + n
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + b_m2 + delta**2 * (self.count * n / total)
        self.count = total

    def add(self, feats):
        a = np.asarray(feats, np.float64)
        if a.shape[0]:
            a_mean = a.mean(axis=0)
            self.merge(a.shape[0], a_mean, ((a - a_mean) ** 2).sum(axis=0))

    def to_json(self):
        return {"count": self.count,
                "mean": None if self.mean is None else [float(v) for v in self.mean],
                "m2": None if self.m2 is None else [float(v) for v in self.m2]}

    def stats(self):
        if self.count == 0:
            raise ShardError("No feature frames in the training clips: cannot compute "
                             "feature statistics.")
        std = np.maximum(np.sqrt(self.m2 / self.count), STD_FLOOR)
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in std],
                "count": int(self.count)}


def _read_part(out_dir: str, name: str) -> dict | None:
    path = os.path.join(out_dir, PARTS_DIR, name + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_split(split, utterances, audio_cfg, out_dir, shard_bytes, digest, layer,
                 counter, progress):
    """Writes (or finds complete) the shards of one split; returns their part records."""
    parts = []
    ids = [u.id for u in utterances]
    i = k = 0
    pending = None  # a clip decoded for the previous shard that did not fit in it
    while i < len(utterances):
        name = f"{split}-{k:05d}.tfrecord"
        path = os.path.join(out_dir, name)
        part = _read_part(out_dir, name)
        if (part is not None and part.get("settings_hash") == digest and part.get("ids")
                and part["ids"] == ids[i: i + len(part["ids"])]
                and os.path.isfile(path) and os.path.getsize(path) == part.get("bytes")
                and part.get("shard_bytes") == shard_bytes):
            parts.append(part)
            i += len(part["ids"])
            k += 1
            counter[0] += len(part["ids"])
            pending = None
            if progress is not None:
                progress(counter[0], counter[1], f"{name} already complete")
            continue
        part_path = os.path.join(out_dir, PARTS_DIR, name + ".json")
        if os.path.exists(part_path):
            os.remove(part_path)
        tmp = path + ".tmp"
        moments = _Moments()
        part = {"file": name, "split": split, "settings_hash": digest, "shard_bytes": shard_bytes,
                "ids": [], "speaker_ids": [], "num_samples": 0, "num_frames": 0, "bytes": 0}
        with tf.io.TFRecordWriter(tmp) as writer:
            while i < len(utterances):
                utt = utterances[i]
                if pending is not None and pending[0] == i:
                    record, audio_len, frames, feats = pending[1:]
                else:
                    audio, feats = load_utterance(utt, audio_cfg, mel_layer=layer)
                    record = encode_clip(utt.id, utt.speaker_id, audio, feats)
                    audio_len, frames = len(audio), feats.shape[0]
                size = len(record) + 16  # TFRecord framing: length, two CRCs
                if part["ids"] and part["bytes"] + size > shard_bytes:
                    pending = (i, record, audio_len, frames, feats)
                    break
                pending = None
                writer.write(record)
                moments.add(feats)
                part["ids"].append(utt.id)
                part["speaker_ids"].append(int(utt.speaker_id))
                part["num_samples"] += int(audio_len)
                part["num_frames"] += int(frames)
                part["bytes"] += size
                i += 1
                counter[0] += 1
                if progress is not None:
                    progress(counter[0], counter[1], name)
        if os.path.getsize(tmp) != part["bytes"]:  # the framing arithmetic, checked
            part["bytes"] = os.path.getsize(tmp)
        part["moments"] = moments.to_json()
        os.replace(tmp, path)
        write_json(part_path, part, indent=1)
        parts.append(part)
        k += 1
    # Shards of an earlier run past the end (other boundaries, fewer clips): removed.
    for fname in os.listdir(out_dir):
        m = _SHARD_RE.match(fname.replace(".tmp", ""))
        if m and m.group(1) == split and (int(m.group(2)) >= k or fname.endswith(".tmp")):
            os.remove(os.path.join(out_dir, fname))
            stale = os.path.join(out_dir, PARTS_DIR, fname + ".json")
            if os.path.exists(stale):
                os.remove(stale)
    return parts


def prepare_shards(
    data_dir: str | os.PathLike,
    audio_cfg: Any,
    out_dir: str | os.PathLike,
    num_validation: int,
    seed: int = 0,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: Progress | None = None,
) -> dict:
    """Prepares (or resumes preparing) `out_dir` from the corpus in `data_dir`.

    Returns the manifest (also written to `out_dir/manifest.json`, last). Clips of
    shards found complete from an earlier run with the same settings are not decoded again.

    Raises:
        CorpusError / AudioError: the corpus is missing, empty or has an undecodable clip.
        ValueError: `num_validation` leaves no training clip, `shard_bytes` < 1.
    """
    data_dir, out_dir = os.fspath(data_dir), os.fspath(out_dir)
    if isinstance(shard_bytes, bool) or not isinstance(shard_bytes, (int, np.integer)) \
            or shard_bytes < 1:
        raise ValueError(f"`shard_bytes` must be a positive integer. Received: {shard_bytes!r}")
    if os.path.abspath(data_dir) == os.path.abspath(out_dir):
        raise ValueError(f"--out must differ from --data. Received: {out_dir!r}")
    utterances, speakers = list_corpus(data_dir, return_speakers=True)
    num_validation = min(int(num_validation), max(0, len(utterances) - 1))
    train, valid = split_corpus(utterances, num_validation, seed=seed)
    settings = audio_settings(audio_cfg)
    digest = settings_hash(audio_cfg)
    layer = make_log_mel(audio_cfg) if settings["feature_dim"] is None else None

    os.makedirs(os.path.join(out_dir, PARTS_DIR), exist_ok=True)
    manifest_path = os.path.join(out_dir, MANIFEST_NAME)
    if os.path.exists(manifest_path):  # describes the folder only once it is complete again
        os.remove(manifest_path)
    counter = [0, len(utterances)]
    parts = {}
    for split, utts in (("train", train), ("valid", valid)):
        parts[split] = _write_split(split, utts, audio_cfg, out_dir, int(shard_bytes), digest,
                                    layer, counter, progress)

    moments = _Moments()
    for part in parts["train"]:
        m = part["moments"]
        moments.merge(m["count"], np.asarray(m["mean"], np.float64), np.asarray(m["m2"], np.float64))
    rate = settings["sample_rate"]

    def summary(split):
        n = sum(p["num_samples"] for p in parts[split])
        return {"num_clips": sum(len(p["ids"]) for p in parts[split]), "num_samples": n,
                "duration_seconds": n / rate}

    total_samples = sum(p["num_samples"] for ps in parts.values() for p in ps)
    manifest = {
        "format": FORMAT,
        "settings_hash": digest,
        "audio_settings": settings,
        "feature_dim": feature_dim_of(audio_cfg),
        "feature_pad_value": feature_pad_value(audio_cfg),
        "source": os.path.abspath(data_dir),
        "num_clips": len(utterances),
        "num_samples": total_samples,
        "duration_seconds": total_samples / rate,
        "split": {"num_validation": num_validation, "seed": int(seed),
                  "train": summary("train"), "valid": summary("valid")},
        "valid_ids": [u.id for u in valid],
        "speakers": list(speakers),
        "speaker_ids": sorted({u.speaker_id for u in utterances}),
        "feature_stats": moments.stats(),
        "shards": [{k: p[k] for k in ("file", "split", "num_samples", "num_frames", "bytes")}
                   | {"num_clips": len(p["ids"])} for ps in parts.values() for p in ps],
    }
    write_json(manifest_path, manifest, indent=1)
    return manifest


def is_shard_folder(path: str | os.PathLike) -> bool:
    """True when `path` holds a `manifest.json` or the shards of an unfinished preparation."""
    path = os.fspath(path)
    return os.path.isdir(path) and (
        os.path.isfile(os.path.join(path, MANIFEST_NAME))
        or os.path.isdir(os.path.join(path, PARTS_DIR)))


def load_shard_manifest(path: str | os.PathLike, audio_cfg: Any = None) -> dict:
    """Reads `path/manifest.json` and checks it, the shard files and (given) the settings.

    Raises:
        ShardError: no manifest (an unfinished preparation), malformed manifest, a listed
            shard missing or of the wrong size (truncated or overwritten).
        ShardSettingsError: `audio_cfg`'s feature settings hash differs from the shards'
            (the message names both hashes and the differing keys).
    """
    path = os.fspath(path)
    mpath = os.path.join(path, MANIFEST_NAME)
    if not os.path.isfile(mpath):
        raise ShardError(f"{path} has no {MANIFEST_NAME}: its preparation did not finish; "
                         "re-run `pwavenet prepare-data` with the same --out to complete it.")
    try:
        with open(mpath) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ShardError(f"{mpath} is not readable JSON ({e}); re-run `pwavenet prepare-data`.") from e
    keys = ("format", "settings_hash", "audio_settings", "shards", "feature_stats", "split")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or \
            any(k not in manifest for k in keys):
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ShardError(f"{mpath} is not a `pwavenet prepare-data` manifest (format {found!r}, "
                         f"expected {FORMAT!r}); re-run `pwavenet prepare-data`.")
    if audio_cfg is not None:
        digest = settings_hash(audio_cfg)
        if digest != manifest["settings_hash"]:
            stored, now = manifest["audio_settings"], audio_settings(audio_cfg)
            diff = ", ".join(f"{k}: shards={stored.get(k)!r} vs config={now.get(k)!r}"
                             for k in sorted(set(stored) | set(now)) if stored.get(k) != now.get(k))
            raise ShardSettingsError(
                f"the shards in {path} were prepared with feature settings hash "
                f"{manifest['settings_hash']} but the config's audio section hashes to {digest} "
                f"(differing: {diff or 'unknown'}); re-run `pwavenet prepare-data` with this config.")
    for shard in manifest["shards"]:
        fpath = os.path.join(path, shard["file"])
        if not os.path.isfile(fpath):
            raise ShardError(f"shard {fpath} listed in {mpath} is missing; re-run "
                             "`pwavenet prepare-data` with the same --out to re-create it.")
        size = os.path.getsize(fpath)
        if size != shard["bytes"]:
            raise ShardError(f"shard {fpath} is corrupt: {size} bytes where the manifest says "
                             f"{shard['bytes']} (truncated or overwritten); delete it and re-run "
                             "`pwavenet prepare-data` with the same --out.")
    return manifest


def print_progress(stream=None) -> Progress:
    """A `Progress` that redraws one stderr line: `[####....] done/total clips (shard)`."""
    stream = stream or sys.stderr

    def show(done, total, message):
        width = 30
        filled = int(width * done / max(total, 1))
        stream.write(f"\rprepare-data [{'#' * filled}{'.' * (width - filled)}] "
                     f"{done}/{total} clips ({message})   ")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show
