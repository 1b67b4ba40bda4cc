"""Preprocessing a corpus into TFRecord shards, and reading random aligned windows back.

Each record is one utterance (`tf.train.Example`):

- `id` (bytes), `speaker_id` (int64),
- `audio_pcm16` (bytes): little-endian int16 codes (`float_to_pcm16`) of `F * hop` samples,
- `features` (bytes): little-endian float32 `[F, D]`, with `num_frames = F` and
  `feature_dim = D` (int64).

`out_dir/manifest.json` records the effective audio settings (`audio_settings(audio_cfg)`),
the shard files and counts. Utterance `i` goes to shard `i % num_shards`.

Features are computed from the audio before 16-bit quantization; for 16-bit sources read at
their own sample rate (e.g. LJ Speech) that audio is already exactly on the 16-bit grid.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import tensorflow as tf

from pwavenet_tf.audio.front_end import (
    audio_settings,
    feature_dim_of,
    feature_pad_value,
    make_log_mel,
)
from pwavenet_tf.audio.quantize import float_to_pcm16
from pwavenet_tf.data.corpus import Utterance
from pwavenet_tf.data.dataset import ProgressFn, _check_positive, _check_window, load_utterance

MANIFEST_NAME = "manifest.json"
FORMAT = "pwavenet_tf.tfrecords/1"

_FEATURE_SPEC = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "speaker_id": tf.io.FixedLenFeature([], tf.int64),
    "audio_pcm16": tf.io.FixedLenFeature([], tf.string),
    "features": tf.io.FixedLenFeature([], tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "feature_dim": tf.io.FixedLenFeature([], tf.int64),
}

__all__ = [
    "MANIFEST_NAME",
    "load_manifest",
    "parse_utterance_record",
    "tfrecord_dataset",
    "write_tfrecord_shards",
]


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))


def write_tfrecord_shards(
    utterances: Sequence[Utterance],
    audio_cfg: Any,
    out_dir: str | os.PathLike,
    num_shards: int,
    progress: ProgressFn | None = None,
) -> list[str]:
    """Loads every utterance (`load_utterance`) and writes `num_shards` TFRecord files.

    Returns the shard paths; also writes `out_dir/manifest.json`.
    """
    utterances = list(utterances)
    out_dir = os.fspath(out_dir)
    if not utterances:
        raise ValueError("`utterances` is empty. Received: utterances=[]")
    num_shards = _check_positive("num_shards", num_shards)
    if num_shards > len(utterances):
        raise ValueError(
            f"`num_shards` must be <= the number of utterances ({len(utterances)}). "
            f"Received: num_shards={num_shards}"
        )
    settings = audio_settings(audio_cfg)
    hop = settings["hop_length"]
    layer = make_log_mel(audio_cfg) if settings["feature_dim"] is None else None
    os.makedirs(out_dir, exist_ok=True)
    names = [f"shard-{k:05d}-of-{num_shards:05d}.tfrecord" for k in range(num_shards)]
    paths = [os.path.join(out_dir, name) for name in names]
    shard_info = [
        {"file": name, "num_utterances": 0, "num_frames": 0, "num_samples": 0} for name in names
    ]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    try:
        for i, utt in enumerate(utterances):
            audio, feats = load_utterance(utt, audio_cfg, mel_layer=layer)
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "id": _bytes(utt.id.encode("utf-8")),
                        "speaker_id": _int(utt.speaker_id),
                        "audio_pcm16": _bytes(float_to_pcm16(audio).astype("<i2").tobytes()),
                        "features": _bytes(feats.astype("<f4").tobytes()),
                        "num_frames": _int(feats.shape[0]),
                        "feature_dim": _int(feats.shape[1]),
                    }
                )
            )
            k = i % num_shards
            writers[k].write(example.SerializeToString())
            shard_info[k]["num_utterances"] += 1
            shard_info[k]["num_frames"] += int(feats.shape[0])
            shard_info[k]["num_samples"] += int(feats.shape[0]) * hop
            if progress is not None:
                progress(i + 1, len(utterances), utt)
    finally:
        for w in writers:
            w.close()
    manifest = {
        "format": FORMAT,
        "audio_settings": settings,
        "feature_dim": feature_dim_of(audio_cfg),
        "feature_pad_value": feature_pad_value(audio_cfg),
        "num_utterances": len(utterances),
        "num_shards": num_shards,
        "num_frames": sum(s["num_frames"] for s in shard_info),
        "num_samples": sum(s["num_samples"] for s in shard_info),
        "speaker_ids": sorted({u.speaker_id for u in utterances}),
        "shards": shard_info,
    }
    with open(os.path.join(out_dir, MANIFEST_NAME), "w") as f:
        json.dump(manifest, f, indent=1)
    return paths


def load_manifest(out_dir: str | os.PathLike) -> dict:
    """Reads and checks `out_dir/manifest.json` (clear errors if missing or malformed)."""
    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise ValueError(f"No TFRecord manifest found. Received: path={path!r}")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"TFRecord manifest is not valid JSON ({e}). Received: path={path!r}") from e
    missing = [k for k in ("format", "audio_settings", "feature_dim", "shards") if k not in manifest]
    if missing or manifest.get("format") != FORMAT:
        raise ValueError(
            f"Malformed TFRecord manifest (missing keys {missing}, format "
            f"{manifest.get('format')!r}). Received: path={path!r}"
        )
    return manifest


def parse_utterance_record(serialized: tf.Tensor) -> dict:
    """Parses one record into `{"id", "speaker_id" int32, "audio" [F*hop] float32, "features" [F, D]}`.

    Audio uses the pcm16 convention, computed in float64 and rounded once (bit-identical
    to `pcm16_to_float`).
    """
    ex = tf.io.parse_single_example(serialized, _FEATURE_SPEC)
    codes = tf.io.decode_raw(ex["audio_pcm16"], tf.int16, little_endian=True)
    audio = tf.cast((tf.cast(codes, tf.float64) + 32768.0) * 2.0 / 65535.0 - 1.0, tf.float32)
    feats = tf.io.decode_raw(ex["features"], tf.float32, little_endian=True)
    feats = tf.reshape(feats, tf.stack([ex["num_frames"], ex["feature_dim"]]))
    return {
        "id": ex["id"],
        "speaker_id": tf.cast(ex["speaker_id"], tf.int32),
        "audio": audio,
        "features": feats,
    }


def tfrecord_dataset(
    out_dir: str | os.PathLike,
    audio_cfg: Any,
    window_samples: int,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    repeat: bool = True,
    drop_remainder: bool = True,
    shuffle_buffer_size: int = 1024,
) -> tf.data.Dataset:
    """Random aligned windows from shards, with the same structure as `make_dataset`.

    Utterances are shuffled (`shuffle`, seeded, reshuffled each epoch) and each gets a
    frame offset from `tf.random.stateless_uniform` with seed `[seed, element_index]`, so
    the pipeline is deterministic per seed.

    Raises:
        ValueError: missing/malformed manifest or shard, or the manifest's audio settings
            differ from `audio_cfg` (the message names the differing keys).
    """
    out_dir = os.fspath(out_dir)
    manifest = load_manifest(out_dir)
    settings = audio_settings(audio_cfg)
    stored = manifest["audio_settings"]
    differing = sorted(k for k in set(settings) | set(stored) if settings.get(k) != stored.get(k))
    if differing:
        detail = ", ".join(f"{k}: manifest={stored.get(k)!r} vs audio_cfg={settings.get(k)!r}" for k in differing)
        raise ValueError(
            f"TFRecord audio settings differ from audio_cfg in keys {differing} ({detail}). "
            f"Received: out_dir={out_dir!r}"
        )
    hop = settings["hop_length"]
    window_samples = _check_window(window_samples, hop)
    batch_size = _check_positive("batch_size", batch_size)
    window_frames = window_samples // hop
    dim = int(manifest["feature_dim"])
    pad_value = float(manifest.get("feature_pad_value", feature_pad_value(audio_cfg)))
    files = [os.path.join(out_dir, s["file"]) for s in manifest["shards"]]
    for path in files:
        if not os.path.isfile(path):
            raise ValueError(f"TFRecord shard listed in the manifest is missing. Received: path={path!r}")
    num_utterances = int(manifest.get("num_utterances", 1))

    ds = tf.data.TFRecordDataset(files)
    if shuffle:
        buffer = max(1, min(shuffle_buffer_size, num_utterances))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    seed_t = tf.constant(seed, tf.int64)

    def window(index: tf.Tensor, serialized: tf.Tensor):
        rec = parse_utterance_record(serialized)
        frames = tf.shape(rec["features"], out_type=tf.int32)[0]
        max_offset = tf.maximum(frames - window_frames, 0)
        offset = tf.random.stateless_uniform(
            [], seed=tf.stack([seed_t, index]), minval=0, maxval=max_offset + 1, dtype=tf.int32
        )
        audio = tf.pad(rec["audio"], [[0, window_samples]])
        audio = audio[offset * hop : offset * hop + window_samples]
        feats = tf.pad(rec["features"], [[0, window_frames], [0, 0]], constant_values=pad_value)
        feats = feats[offset : offset + window_frames]
        audio = tf.ensure_shape(audio, [window_samples])
        feats = tf.ensure_shape(feats, [window_frames, dim])
        return audio, feats, rec["speaker_id"]

    ds = ds.enumerate().map(window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(
        lambda a, f, spk: ({"audio": a, "features": f, "speaker_id": spk}, a),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.prefetch(tf.data.AUTOTUNE)
