"""Measurement primitives of the benchmarks: repeated timings, the matmul peak, peak memory
and the machine's description (used by `speed` for generation and `training` for training
steps).

- `time_runs(fn, warmup, repeats)`: calls `fn` `warmup` times untimed (tracing, XLA
  compilation, caches), then `repeats` timed times; the result has the median, min and
  max wall-clock seconds. `fn` must block until its result is ready (return numpy, or
  call `.numpy()`), or the timing would measure only the dispatch.
- `matmul_peak(...)`: the machine's float32 matrix-multiply throughput, measured with
  `tf.linalg.matmul` of square matrices inside a `tf.function`; the peak is the best
  GFLOP/s over the sizes and runs (the least disturbed run of the best-suited size).
- `PeakMemory`: the peak resident set size (RSS) of this process during a phase. On
  Linux, writing "5" to `/proc/self/clear_refs` resets the kernel's RSS high-water mark
  (`VmHWM`) to the current RSS, so `VmHWM` read at the end of the phase is the highest
  RSS reached during that phase, measured by the kernel (no sampling gaps). Where that
  reset is not allowed, a background thread samples `VmRSS` every 2 ms instead (it can
  miss short spikes). Reported: `peak_rss_mb` (the whole process: Python, TensorFlow,
  the models' weights and everything earlier phases still hold) and `phase_increase_mb`
  (peak minus the RSS at the start of the phase: what the phase itself added, a lower
  bound where an allocator reuses memory freed by an earlier phase). Without `/proc`
  (not Linux), `resource.getrusage` gives only the lifetime maximum and the increase is
  reported as None.
- `machine_info()`: CPU, cores, SIMD flags, GPUs, TensorFlow version, threads, load.
"""

import dataclasses
import os
import platform
import re
import statistics
import threading
import time

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


# --------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Timing:
    """Wall-clock seconds of `repeats` timed runs."""

    times: list

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def min(self):
        return min(self.times)

    @property
    def max(self):
        return max(self.times)

    def rate(self, work):
        """`work` per second (e.g. samples/s): median, min and max (min from the slowest run)."""
        return {"median": work / self.median, "min": work / self.max, "max": work / self.min}

    def to_dict(self):
        return {"median_s": self.median, "min_s": self.min, "max_s": self.max,
                "runs": len(self.times), "times_s": list(self.times)}


def time_runs(fn, warmup=1, repeats=5):
    """Runs `fn()` `warmup` times, then times `repeats` runs. Returns `(Timing, last result)`."""
    if repeats < 1:
        raise ValueError(f"`repeats` must be >= 1. Received: repeats={repeats}")
    if warmup < 0:
        raise ValueError(f"`warmup` must be >= 0. Received: warmup={warmup}")
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return Timing(times), result


# --------------------------------------------------------------------------- matmul peak


def matmul_peak(sizes=(512, 1024, 2048), repeats=5, warmup=1):
    """Measured float32 matmul throughput of this machine (TensorFlow, default threads).

    Returns a dict: `peak_gflops` (best over sizes and runs), and per size the median,
    min and max GFLOP/s (2 n^3 FLOPs per product).
    """
    import tensorflow as tf

    @tf.function(autograph=False)
    def product(a, b):
        return tf.reduce_sum(tf.linalg.matmul(a, b)[:1, :1])  # tiny fetch: time the product

    per_size = {}
    best = 0.0
    for n in sizes:
        a = tf.random.stateless_normal([n, n], seed=[1, n])
        b = tf.random.stateless_normal([n, n], seed=[2, n])
        timing, _ = time_runs(lambda: product(a, b).numpy(), warmup=warmup, repeats=repeats)
        rate = timing.rate(2.0 * n**3 / 1e9)
        per_size[str(n)] = {"gflops_median": rate["median"], "gflops_min": rate["min"],
                            "gflops_max": rate["max"]}
        best = max(best, rate["max"])
    return {"peak_gflops": best, "sizes": per_size, "dtype": "float32",
            "method": "tf.linalg.matmul of n x n float32 matrices in a tf.function; "
                      "peak = best run over the sizes"}


# --------------------------------------------------------------------------- memory


def _status_kb(field):
    try:
        with open(_STATUS) as f:
            m = re.search(rf"^{field}:\s+(\d+)\s+kB", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def current_rss_mb():
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def _reset_peak():
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager: the peak RSS of this process during the `with` block.

    After the block: `peak_rss_mb`, `start_rss_mb`, `phase_increase_mb`, `method`
    ("VmHWM after clear_refs reset", "VmRSS sampled every 2 ms" or "getrusage lifetime
    maximum"). See the module docstring for what they mean.
    """

    def __init__(self, sample_interval_s=0.002):
        self.sample_interval_s = sample_interval_s
        self.peak_rss_mb = self.start_rss_mb = self.phase_increase_mb = None
        self.method = None
        self._stop = None
        self._thread = None
        self._sampled = 0.0

    def __enter__(self):
        self.start_rss_mb = current_rss_mb()
        if self.start_rss_mb is None:
            self.method = "getrusage lifetime maximum"
        elif _reset_peak():
            self.method = "VmHWM after clear_refs reset"
        else:
            self.method = "VmRSS sampled every 2 ms"
            self._sampled = self.start_rss_mb
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            rss = current_rss_mb()
            if rss is not None:
                self._sampled = max(self._sampled, rss)
            self._stop.wait(self.sample_interval_s)

    def __exit__(self, *exc):
        if self.method == "VmHWM after clear_refs reset":
            self.peak_rss_mb = _status_kb("VmHWM") / 1024.0
        elif self.method == "VmRSS sampled every 2 ms":
            self._stop.set()
            self._thread.join()
            self.peak_rss_mb = max(self._sampled, current_rss_mb() or 0.0)
        else:
            import resource

            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak_rss_mb = kb / 1024.0 if platform.system() != "Darwin" else kb / 2**20
        if self.start_rss_mb is not None:
            self.phase_increase_mb = max(0.0, self.peak_rss_mb - self.start_rss_mb)
        return False

    def to_dict(self):
        return {"peak_rss_mb": self.peak_rss_mb, "phase_increase_mb": self.phase_increase_mb,
                "start_rss_mb": self.start_rss_mb, "method": self.method}


# --------------------------------------------------------------------------- machine


def machine_info():
    """CPU model, core count, TensorFlow version and threading of this machine."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            cpu = m.group(1).strip()
        flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        simd = sorted(f for f in (flags.group(1).split() if flags else [])
                      if f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"))
    except OSError:
        simd = []
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": cores,
        "simd": simd,
        "gpus": gpus,
        "tensorflow": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        "load_average_at_start": None if load is None else [round(x, 2) for x in load],
        "platform": platform.platform(),
    }
