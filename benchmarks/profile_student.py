"""Where the student's CPU time goes, and what a faster formulation would gain.

Times, on `--seconds` of audio at batch 1 (median and best of `--repeats` runs after a
warm-up), for the student of `--config` (untrained weights: speed does not depend on
training):

1. the whole parallel pass (`StudentGenerator`), graph mode and XLA;
2. its parts: the conditioning upsampler and each flow alone;
3. one residual block's operations at the flow's shapes, per dilation: the dilated
   causal convolution (`CausalConv1D`), the conditioning projection, the gate
   (tanh * sigmoid), the residual projection and the residual add/scale; summed over the
   blocks, they model the time of the flows;
4. alternative formulations of the same network with the same weights (outputs checked
   against the model's): "fused-taps" computes each block's dilated convolution AND its
   conditioning projection as ONE matmul of the concatenated taps
   [x_{t-2d}, x_{t-d}, x_t, c_t] `[T, k*C + C_cond]` with the stacked kernels
   `[k*C + C_cond, 2C]` (no SpaceToBatch round trip for dilations > 1, one product instead
   of two); "tiled", the same pass streamed over time tiles (`--tiles`) with per-layer
   queues of the last (k-1)*d inputs, so that the working set stays in the caches; and
   the model built with the `mixed_bfloat16` policy (bf16 matmuls on CPUs with
   AVX512-BF16 / AMX).

Prints a Markdown report; `--json OUT` writes every figure.

Example:
  python benchmarks/profile_student.py --config paper --seconds 1 --json profile.json
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from pwavenet_tf.benchmarks import flops  # noqa: E402
from pwavenet_tf.benchmarks.speed import machine_info, matmul_peak, time_runs  # noqa: E402
from pwavenet_tf.config import load_config  # noqa: E402
from pwavenet_tf.models.iaf_flow import soft_clamp  # noqa: E402
from pwavenet_tf.models.iaf_student import IAFStudent  # noqa: E402
from pwavenet_tf.models.student_generator import StudentGenerator  # noqa: E402


def timed(fn, warmup, repeats):
    timing, out = time_runs(lambda: np.asarray(fn()), warmup=warmup, repeats=repeats)
    return {"median_s": timing.median, "best_s": timing.min, "max_s": timing.max}, out


# --------------------------------------------------------------------------- fused-taps


def fused_weights(student):
    """Per flow: input proj, per block (dilation, fused kernel, bias, residual W, b), output."""
    flows = []
    for flow in student.flows:
        blocks = []
        for block in flow.blocks:
            k, c_in, g = block.conv.kernel.shape
            kernel = tf.concat([tf.reshape(block.conv.kernel, [k * c_in, g]),
                                block.conditioning_proj.kernel], axis=0)
            blocks.append((block.dilation_rate, k, kernel, block.conv.bias,
                           block.residual_proj.kernel, block.residual_proj.bias,
                           block.conv.kernel, block.conditioning_proj.kernel))
        flows.append((flow, flow.input_proj.kernel[0], flow.input_proj.bias, blocks,
                      flow.output_proj.kernel, flow.output_proj.bias))
    return flows


def fused_forward(flows, noise, conditioning):
    """The student's parallel pass with fused-taps blocks (batch first, float32)."""
    x = noise
    t = tf.shape(noise)[1]
    for flow, w_in, b_in, blocks, w_out, b_out in flows:
        shifted = tf.pad(x[:, :-1], [[0, 0], [1, 0]])
        h = shifted[..., None] * w_in + b_in  # kernel-1 projection of one channel
        for d, k, kernel, bias, w_res, b_res, _, _ in blocks:
            q = (k - 1) * d
            padded = tf.pad(h, [[0, 0], [q, 0], [0, 0]])
            taps = [padded[:, i * d: i * d + t] for i in range(k)] + [conditioning]
            z = tf.matmul(tf.concat(taps, axis=-1), kernel) + bias
            a, b = tf.split(z, 2, axis=-1)
            h = (h + tf.matmul(tf.tanh(a) * tf.sigmoid(b), w_res) + b_res) * math.sqrt(0.5)
        out = tf.matmul(tf.nn.relu(h), w_out) + b_out
        mu = out[..., 0]
        log_s = soft_clamp(out[..., 1], flow.log_scale_min, flow.log_scale_max)
        x = x * tf.exp(log_s) + mu
    return x


def tiled_forward(flows, noise, conditioning, tile):
    """The student's pass streamed over time tiles of `tile` samples (same output).

    Every flow and every layer processes tile 1, then tile 2, ...: each dilated
    convolution keeps a queue of its last (k-1)*d inputs from the previous tile (the
    teacher's cached-generation queues, applied to tiles instead of single samples), and
    each flow keeps the last sample of its input for the one-step shift. No
    recomputation, and the working set is O(tile x channels) per layer instead of
    O(T x channels): activations stay in the CPU caches.
    """
    batch = tf.shape(noise)[0]
    length = int(noise.shape[1])
    state = []
    for _, w_in, _, blocks, _, _ in flows:
        c = int(w_in.shape[-1])
        state.append({"last": tf.zeros([batch, 1]),
                      "queues": [tf.zeros([batch, (k - 1) * d, c]) for d, k, *_ in blocks]})
    outputs = []
    for t0 in range(0, length, tile):
        x = noise[:, t0:t0 + tile]
        cond = conditioning[:, t0:t0 + tile]
        for (flow, w_in, b_in, blocks, w_out, b_out), st in zip(flows, state):
            shifted = tf.concat([st["last"], x[:, :-1]], axis=1)
            st["last"] = x[:, -1:]
            h = shifted[..., None] * w_in + b_in
            for i, (d, k, _, bias, w_res, b_res, conv_kernel, cond_kernel) in enumerate(blocks):
                extended = tf.concat([st["queues"][i], h], axis=1)
                st["queues"][i] = extended[:, -(k - 1) * d:]
                z = ops.conv(extended, conv_kernel, strides=1, padding="valid",
                             dilation_rate=d) + bias + tf.matmul(cond, cond_kernel)
                a, b = tf.split(z, 2, axis=-1)
                h = (h + tf.matmul(tf.tanh(a) * tf.sigmoid(b), w_res) + b_res) * math.sqrt(0.5)
            out = tf.matmul(tf.nn.relu(h), w_out) + b_out
            log_s = soft_clamp(out[..., 1], flow.log_scale_min, flow.log_scale_max)
            x = x * tf.exp(log_s) + out[..., 0]
        outputs.append(x)
    return tf.concat(outputs, axis=1)


# --------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="paper")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--no-bf16", action="store_true", help="skip the mixed_bfloat16 variant")
    p.add_argument("--tiles", type=int, nargs="*", default=[2048],
                   help="tile lengths of the streamed (tiled) variant (default 2048)")
    p.add_argument("--json", help="write the figures to this JSON file")
    args = p.parse_args(argv)

    config = load_config(args.config)
    sr, hop = config.audio.sample_rate, config.audio.hop_length
    frames = max(1, round(args.seconds * sr / hop))
    t = frames * hop
    student = IAFStudent.from_pwavenet_config(config)
    rng = np.random.default_rng(0)
    # An untrained flow's output projection is zero (x = z * const): give it small random
    # weights so that the comparison of the alternatives checks the whole network.
    for flow in student.flows:
        k = flow.output_proj.kernel
        k.assign(rng.normal(0.0, 0.02, k.shape).astype("float32"))
    gen = StudentGenerator(student)
    feats = tf.constant(rng.normal(-5.0, 2.0, (1, frames, config.audio.conditioning_dim))
                        .astype("float32"))
    noise = StudentGenerator.logistic_noise(1, t, (0, 0))
    macs = flops.student_macs_per_sample(student)
    w, r = args.warmup, args.repeats
    result = {"config": config.name, "samples": t, "seconds": t / sr,
              "machine": machine_info(), "macs_per_sample": macs["total"],
              "breakdown_macs": macs["breakdown"]}
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    result["matmul"] = matmul_peak(repeats=max(3, r))
    peak = result["matmul"]["peak_gflops"]
    log(f"matmul peak {peak:.1f} GFLOP/s")

    def rate(entry, work_macs=macs["total"]):
        entry["samples_per_s"] = t / entry["median_s"]
        entry["samples_per_s_best"] = t / entry["best_s"]
        entry["gflops"] = 2 * work_macs * t / entry["median_s"] / 1e9
        entry["fraction_of_peak"] = entry["gflops"] / peak
        return entry

    # 1. Whole pass.
    whole = {}
    for name, jit in (("graph", False), ("xla", True)):
        entry, ref_audio = timed(lambda: gen.generate(feats, seed=(0, 0), jit_compile=jit), w, r)
        whole[name] = rate(entry)
        log(f"whole {name}: {entry['samples_per_s']:,.0f} samples/s")
    result["whole"] = whole

    # 2. Parts.
    cond = student.upsample_conditioning(feats)
    up = tf.function(lambda f: student.upsample_conditioning(f))
    parts = {"upsampler": timed(lambda: up(feats), w, r)[0]}
    x = noise
    for i, flow in enumerate(student.flows):
        fn = tf.function(lambda z, c, flow=flow: flow(z, c))
        parts[f"flow_{i} ({flow.num_layers} layers)"] = timed(lambda: fn(x, cond)[0], w, r)[0]
    result["parts"] = parts
    log("parts done")

    # 3. Operations of one block at the flow's shapes, per distinct dilation.
    c = student.channels
    g = 2 * c
    h = tf.constant(rng.normal(size=(1, t, c)).astype("float32"))
    zg = tf.constant(rng.normal(size=(1, t, g)).astype("float32"))
    z_half = tf.constant(rng.normal(size=(1, t, c)).astype("float32"))
    counts = {}
    for flow in student.flows:
        for d in flow.dilations:
            counts[d] = counts.get(d, 0) + 1
    ops_time = {}
    block = student.flows[0].blocks[0]
    for d in sorted(counts):
        conv = type(block.conv)(g, block.conv.kernel_size, d)
        conv.build((1, t, c))
        fn = tf.function(lambda v, conv=conv: conv(v))
        ops_time[f"dilated_conv d={d}"] = timed(lambda: fn(h), w, r)[0]
    fn = tf.function(lambda v: block.conditioning_proj(v))
    ops_time["conditioning_proj"] = timed(lambda: fn(cond), w, r)[0]
    fn = tf.function(lambda v: ops.tanh(v[..., :c]) * ops.sigmoid(v[..., c:]))
    ops_time["gate"] = timed(lambda: fn(zg), w, r)[0]
    fn = tf.function(lambda v: block.residual_proj(v))
    ops_time["residual_proj"] = timed(lambda: fn(z_half), w, r)[0]
    fn = tf.function(lambda a, b: (a + b) * math.sqrt(0.5))
    ops_time["residual add+scale"] = timed(lambda: fn(h, z_half), w, r)[0]
    fn = tf.function(lambda v: v + zg)
    ops_time["conditioning add"] = timed(lambda: fn(zg), w, r)[0]
    blocks_total = sum(counts.values())
    model = {}
    model["dilated_conv"] = sum(ops_time[f"dilated_conv d={d}"]["best_s"] * n
                                for d, n in counts.items())
    for k in ("conditioning_proj", "gate", "residual_proj", "residual add+scale",
              "conditioning add"):
        model[k] = ops_time[k]["best_s"] * blocks_total
    result["block_ops"] = ops_time
    result["block_ops_model_s"] = model
    result["dilation_counts"] = {str(k): v for k, v in counts.items()}
    log("block ops done")

    # 4. Alternatives.
    alt = {}
    fw = fused_weights(student)
    fused_graph = tf.function(lambda z, cnd: fused_forward(fw, z, cnd))
    fused_xla = tf.function(lambda z, cnd: fused_forward(fw, z, cnd), jit_compile=True)
    reference = student.forward_from_conditioning(noise, cond)["audio"].numpy()
    variants = [("fused-taps graph", fused_graph), ("fused-taps xla", fused_xla)]
    for tile in args.tiles:
        variants.append((f"tiled {tile} graph",
                         tf.function(lambda z, cnd, tile=tile: tiled_forward(fw, z, cnd, tile))))
    for name, fn in variants:
        entry, out = timed(lambda: fn(noise, cond), w, r)
        entry["max_abs_diff_vs_model"] = float(np.max(np.abs(out - reference)))
        alt[name] = rate(entry)
        log(f"{name}: {entry['samples_per_s']:,.0f} samples/s")
    if not args.no_bf16:
        bf = IAFStudent(**{**student.get_config(), "dtype": "mixed_bfloat16"})
        bf.set_weights(student.get_weights())
        bgen = StudentGenerator(bf)
        for name, jit in (("mixed_bfloat16 graph", False), ("mixed_bfloat16 xla", True)):
            entry, out = timed(lambda: bgen.generate(feats, seed=(0, 0), jit_compile=jit), w, r)
            entry["max_abs_diff_vs_model"] = float(np.max(np.abs(out - ref_audio)))
            alt[name] = rate(entry)
            log(f"{name}: {entry['samples_per_s']:,.0f} samples/s")
    result["alternatives"] = alt
    # The peak again at the end (shared machines): keep the better, recompute fractions.
    end = matmul_peak(repeats=max(3, r))["peak_gflops"]
    result["matmul"]["peak_gflops_start"] = peak
    result["matmul"]["peak_gflops_end"] = end
    peak = result["matmul"]["peak_gflops"] = max(peak, end)
    for group in (whole, alt):
        for e in group.values():
            e["fraction_of_peak"] = e["gflops"] / peak

    text = render(result)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


def render(result):
    """Markdown tables of a profile result."""
    sr_samples = result["samples"]
    peak = result["matmul"]["peak_gflops"]
    out = [f"Student of `{result['config']}`, {result['seconds']:.2f} s of audio "
           f"({sr_samples:,} samples) at batch 1, {result['macs_per_sample'] / 1e6:.3g} M "
           f"multiply-adds per sample; float32 matmul peak {peak:.1f} GFLOP/s.", ""]
    out += ["| pass | samples/s (median) | best | GFLOP/s | % of peak | max abs diff |",
            "|---|---|---|---|---|---|"]
    rows = [(f"model, {k}", v) for k, v in result["whole"].items()]
    rows += list(result.get("alternatives", {}).items())
    for name, e in rows:
        diff = e.get("max_abs_diff_vs_model")
        out.append(f"| {name} | {e['samples_per_s']:,.0f} | {e['samples_per_s_best']:,.0f} | "
                   f"{e['gflops']:.1f} | {100 * e['fraction_of_peak']:.0f} | "
                   + ("-" if diff is None else f"{diff:.1e}") + " |")
    out += ["", "| part (graph mode) | median ms | best ms |", "|---|---|---|"]
    for name, e in result["parts"].items():
        out.append(f"| {name} | {1e3 * e['median_s']:.1f} | {1e3 * e['best_s']:.1f} |")
    model = result["block_ops_model_s"]
    total = sum(model.values())
    out += ["", "Operations of the residual blocks, each timed alone at the block's shapes "
            "(best run) and multiplied by its count over all flows:", "",
            "| operation | modelled ms | share |", "|---|---|---|"]
    for k, v in sorted(model.items(), key=lambda kv: -kv[1]):
        out.append(f"| {k} | {1e3 * v:.1f} | {100 * v / total:.0f}% |")
    out.append(f"| **sum** | {1e3 * total:.1f} | 100% |")
    out += ["", "| dilated conv alone, per dilation | best ms |", "|---|---|"]
    for k, e in result["block_ops"].items():
        if k.startswith("dilated_conv"):
            out.append(f"| {k} | {1e3 * e['best_s']:.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
