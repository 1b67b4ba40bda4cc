"""Streaming student (issue 13, section 1): peak memory against input length, first-audio
latency and steady real-time factor against chunk size. Prints; asserts nothing.

1. Peak RSS: for each input length (10 s, 60 s, 600 s of random log-mel frames at the
   bundled `ljspeech_mini` preset's shape), a fresh Python process runs
   `pwavenet vocode --mel X.npy` with the preset student (streamed in `--chunk-seconds`
   chunks into the WAV) and prints its own `ru_maxrss`; also the RSS of a process that only
   loads the student (the floor).
2. Latency and real-time factor: in this process, for chunks of 50 ms, 200 ms and 1 s of
   frames pushed into a `StreamingVocoder` (after a warm-up stream that traces the chunk
   function): the compute time of the first push (its audio is the first audio; the first
   frame also waits for the one frame of look-ahead, which a chunk of >= 2 frames holds),
   hence first-audio latency = chunk duration + that compute time; and the steady
   real-time factor (compute seconds per audio second over the remaining pushes).

Run: python benchmarks/streaming_student.py [--lengths 10 60 600] [--chunk-seconds 1]
     [--rtf-seconds 20] [--skip-rss] [--skip-latency]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_CHILD = r"""
import os, resource, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
mode, npy, out, chunk = sys.argv[1:5]
if mode == "load":
    from pwavenet_tf.presets import from_preset
    from_preset("ljspeech_mini").student()
else:
    from pwavenet_tf.cli import main
    rc = main(["vocode", "--mel", npy, "--output-dir", out, "--chunk-seconds", chunk, "--quiet"])
    assert rc == 0, rc
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _child(mode, npy="", out="", chunk="10"):
    t = time.time()
    r = subprocess.run([sys.executable, "-c", _CHILD, mode, npy, out, chunk],
                       capture_output=True, text=True)
    wall = time.time() - t
    if r.returncode:
        raise RuntimeError(f"child failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-3000:]}")
    kb = int([ln for ln in r.stdout.splitlines() if ln.startswith("MAXRSS_KB")][-1].split()[1])
    rtf = [ln for ln in r.stdout.splitlines() if "real-time factor" in ln]
    return kb / 1024.0, wall, (rtf[-1] if rtf else "")


def peak_rss(lengths, chunk_seconds):
    import numpy as np

    from pwavenet_tf.presets import from_preset

    config = from_preset("ljspeech_mini").config.audio
    sr, hop, dim = config.sample_rate, config.hop_length, config.conditioning_dim
    floor, _, _ = _child("load")
    print(f"peak RSS, fresh process (`pwavenet vocode --mel`, preset ljspeech_mini student, "
          f"--chunk-seconds {chunk_seconds:g}); loading the student alone: {floor:.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for seconds in lengths:
            frames = int(seconds * sr // hop)
            # Random frames around a speech-like log-mel level (the values do not change
            # the memory or the compute).
            mel = rng.normal(-4.0, 2.0, size=(frames, dim)).astype("float32")
            npy = os.path.join(tmp, f"mel_{seconds:g}s.npy")
            np.save(npy, mel)
            del mel
            mb, wall, line = _child("vocode", npy, os.path.join(tmp, "out"), str(chunk_seconds))
            print(f"  {seconds:>6g} s of mel ({frames} frames, {frames * hop} samples): "
                  f"peak RSS {mb:7.0f} MB, process wall {wall:6.1f} s | {line.strip()}")


def latency(chunk_list, rtf_seconds):
    import numpy as np

    from pwavenet_tf.models.streaming_vocoder import StreamingVocoder
    from pwavenet_tf.presets import from_preset

    preset = from_preset("ljspeech_mini")
    student = preset.student()
    sr, hop = preset.config.audio.sample_rate, preset.config.audio.hop_length
    dim = preset.config.audio.conditioning_dim
    frames = int(rtf_seconds * sr // hop)
    mel = np.random.default_rng(1).normal(-4.0, 2.0, size=(frames, dim)).astype("float32")
    print(f"\nlatency and real-time factor ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; preset ljspeech_mini student, {rtf_seconds:g} s of mel "
          f"per chunk size, graph mode)")
    for chunk_s in chunk_list:
        n = max(1, round(chunk_s * sr / hop))
        warm = StreamingVocoder(student, seed=0)  # traces the shared chunk function
        for i in range(0, min(frames, 4 * n), n):
            warm.push(mel[i:i + n])
        warm.flush()
        vocoder = StreamingVocoder(student, seed=0)
        t = time.perf_counter()
        first = vocoder.push(mel[:n])
        first_compute = time.perf_counter() - t
        t = time.perf_counter()
        samples = 0
        for i in range(n, frames, n):
            samples += len(vocoder.push(mel[i:i + n]))
        steady = time.perf_counter() - t
        samples += len(vocoder.flush())
        chunk_ms = 1000 * n * hop / sr
        print(f"  chunk {chunk_s * 1000:5.0f} ms ({n:3d} frames = {chunk_ms:6.1f} ms): first "
              f"push {1000 * first_compute:7.1f} ms -> {len(first)} samples; first-audio "
              f"latency {chunk_ms + 1000 * first_compute:7.1f} ms; steady real-time factor "
              f"{steady / (samples / sr):.3f} ({samples / steady:,.0f} samples/s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=float, nargs="+", default=[10, 60, 600])
    p.add_argument("--chunk-seconds", type=float, default=1.0)
    p.add_argument("--chunks", type=float, nargs="+", default=[0.05, 0.2, 1.0],
                   help="chunk sizes in seconds for the latency part")
    p.add_argument("--rtf-seconds", type=float, default=20.0)
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--skip-latency", action="store_true")
    args = p.parse_args()
    if not args.skip_rss:
        peak_rss(args.lengths, args.chunk_seconds)
    if not args.skip_latency:
        latency(args.chunks, args.rtf_seconds)


if __name__ == "__main__":
    main()
