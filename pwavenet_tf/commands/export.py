"""Export a trained student or teacher for serving.

`--format saved_model` (default) writes a SavedModel in TF Serving's versioned layout
BASE/NAME/VERSION/ (VERSION: the next free integer unless --version is given; an existing
version is never overwritten). Signatures (see docs/serving.md):

  serving_default  mel f32 [batch, frames, n_mels] (raw log-mel) [+ speaker_id i32 [batch]]
                   [+ seed i64 scalar, default 0]  ->  audio f32 [batch, frames*hop] in
                   [-1, 1], audio_pcm16 i16 [batch, frames*hop]
  vocode_waveform  audio f32 [batch, samples] at the model's sample rate [+ speaker_id]
                   [+ seed]  ->  audio, audio_pcm16 (resynthesized)
  mel              audio f32 [batch, samples]  ->  mel (raw log-mel, the serving_default
                   input), normalized_mel
  stream_step      (student) mel f32 [batch, n, n_mels] (any n >= 0) + state f32
                   [batch, stream_state_size] (zeros to start) [+ pushed i64, seed,
                   final bool]  ->  audio of the frames now ready, state, pushed

The student's serving_default and vocode_waveform run the request --chunk-seconds at a
time in a tf.while_loop carrying the flows' queues (the same audio as one pass), so
memory does not grow with the request beyond its input and output. Inputs longer than
--max-seconds are rejected. The config, feature statistics and sample rate travel inside
(assets/config.json, variables).

`--format tflite` (student only) writes BASE/NAME/VERSION/model.tflite: inputs mel
[1, frames, n_mels] and noise [1, frames*hop] (logistic noise: TFLite has no philox RNG),
output audio. With --tflite-stream-frames N it is the streaming step instead (window,
noise, state in; audio, state out; N frames per call; see docs/serving.md), with what a
client needs in config.json ("stream").

Examples:
  pwavenet export --model runs/student --out /models
  tensorflow_model_server --rest_api_port=8501 --model_name=pwavenet_student \\
      --model_base_path=/models/pwavenet_student
  pwavenet export --model runs/student --out /models --format tflite
"""

import json
import os
import time

from pwavenet_tf.commands import common


def add_arguments(p):
    p.add_argument("--model", required=True, help="trained teacher or student directory")
    p.add_argument("--out", required=True, help="export base path (BASE of BASE/NAME/VERSION)")
    p.add_argument("--name", help="model name (default: pwavenet_student / pwavenet_teacher; "
                                  "pwavenet_student_tflite for --format tflite)")
    p.add_argument("--version", type=common.positive_int,
                   help="integer version (default: the next free one under BASE/NAME)")
    p.add_argument("--format", choices=["saved_model", "tflite"], default="saved_model",
                   help="saved_model (TF Serving, default) or tflite (student only)")
    p.add_argument("--max-seconds", type=common.positive_float, default=600.0,
                   help="longest input the SavedModel accepts, in seconds (default 600)")
    p.add_argument("--seed", type=int, default=0,
                   help="noise seed used when a request has no `seed` (default 0)")
    common.add_precision_argument(p)
    p.add_argument("--chunk-seconds", type=common.positive_float, default=1.0,
                   help="student SavedModel: seconds of audio per chunk of the in-graph loop "
                   "that bounds a request's memory (default 1)")
    p.add_argument("--tflite-stream-frames", type=common.positive_int, default=None,
                   help="tflite: convert the streaming step for chunks of this many frames "
                   "instead of the one-pass model")
    p.add_argument("--tflite-frames", type=common.positive_int, default=None,
                   help="tflite: fix the input length to this many frames (default: dynamic)")
    p.add_argument("--tflite-optimize", action="store_true",
                   help="tflite: dynamic-range quantised weights (smaller, not bit-exact)")


def run(args):
    from pwavenet_tf.export.export_module import ExportModule
    from pwavenet_tf.export.versioning import publish_version, version_dir
    from pwavenet_tf.inference import load_model

    if args.format == "tflite" and args.precision != "float32":
        raise ValueError(f"--precision {args.precision} applies to the SavedModel export; the "
                         "TFLite conversion is float32 (--tflite-optimize quantises the weights).")
    role, model, config = load_model(args.model, precision=args.precision)
    start = time.time()
    if args.format == "tflite":
        from pwavenet_tf.export.tflite import convert_student_to_tflite

        if role != "student":
            raise ValueError(
                f"--format tflite converts the student only; {args.model} holds a {role}. "
                "Export the teacher as a SavedModel (--format saved_model)."
            )
        name = args.name or "pwavenet_student_tflite"
        path, version = version_dir(args.out, name, args.version)
        metadata = ExportModule(model, config, max_seconds=args.max_seconds,
                                default_seed=args.seed).metadata()
        metadata.update(format="pwavenet_tf TFLite", signatures=None)
        if args.tflite_stream_frames:
            from pwavenet_tf.export.tflite import (convert_student_stream_to_tflite,
                                                   stream_metadata)

            content = convert_student_stream_to_tflite(model, args.tflite_stream_frames,
                                                       optimize=args.tflite_optimize)
            stream = stream_metadata(model, args.tflite_stream_frames)
            n = stream["chunk_frames"] + 2 * stream["look_ahead_frames"]
            metadata.update(stream=stream, tflite_inputs={
                "window": f"float32 [1, {n}, {metadata['n_mels']}] raw log-mel",
                "noise": f"float32 [1, {stream['chunk_frames'] * metadata['hop_length']}]",
                "state": f"float32 [1, {stream['stream_state_size']}]"})
        else:
            content = convert_student_to_tflite(model, frames=args.tflite_frames,
                                                optimize=args.tflite_optimize)
            metadata.update(tflite_inputs={
                "mel": f"float32 [1, frames, {metadata['n_mels']}]",
                "noise": "float32 [1, frames * hop] logistic(0, 1)"},
                tflite_frames=args.tflite_frames)

        def write(tmp):
            with open(os.path.join(tmp, "model.tflite"), "wb") as f:
                f.write(content)
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(metadata, f, indent=2)
                f.write("\n")

        publish_version(path, write)
        print(f"exported the student as TFLite to {os.path.join(path, 'model.tflite')} "
              f"(version {version}, {len(content) / 1e6:.2f} MB) in {time.time() - start:.1f} s")
        return None

    module = ExportModule(model, config, max_seconds=args.max_seconds, default_seed=args.seed,
                          chunk_seconds=args.chunk_seconds)
    name = args.name or f"pwavenet_{role}"
    path, version = version_dir(args.out, name, args.version)
    publish_version(path, module.save)
    print(f"exported the {role} ({args.precision}) to {path} (version {version}) in "
          f"{time.time() - start:.1f} s")
    meta = module.metadata()
    speaker = " + speaker_id int32 [batch]" if meta["multi_speaker"] else ""
    print(f"  serving_default: mel float32 [batch, frames, {meta['n_mels']}]{speaker} "
          f"+ seed int64 [] (default {meta['default_seed']}) -> audio float32 "
          f"[batch, frames * {meta['hop_length']}], audio_pcm16 int16")
    if meta["uses_mel"]:
        print(f"  vocode_waveform: audio float32 [batch, samples] at {meta['sample_rate']} Hz"
              f"{speaker} + seed -> audio, audio_pcm16")
        print("  mel: audio float32 [batch, samples] -> mel (raw log-mel), normalized_mel")
    if meta.get("stream_state_size"):
        print(f"  stream_step: mel [batch, n, {meta['n_mels']}] + state float32 [batch, "
              f"{meta['stream_state_size']}] (zeros to start) + pushed, seed, final -> audio, "
              "state, pushed")
    print(f"  inputs longer than {meta['max_seconds']:g} s are rejected")
    print(f"serve: tensorflow_model_server --rest_api_port=8501 --model_name={name} "
          f"--model_base_path={os.path.abspath(os.path.join(args.out, name))}")
    return None

