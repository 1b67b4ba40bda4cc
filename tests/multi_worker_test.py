"""Two worker processes on 127.0.0.1 (`MultiWorkerMirroredStrategy` from `TF_CONFIG`) train
the tiny teacher and then distill it; a killed worker resumes with the other from the last
checkpoint."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

STEPS = 20
EVERY = 10


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    cfg = json.load(open(os.path.join(os.path.dirname(__file__), "..", "configs", "tiny.json")))
    cfg["teacher_training"].update(checkpoint_every=EVERY, keep_checkpoints=5)
    cfg["distill"].update(checkpoint_every=EVERY, keep_checkpoints=5, num_kl_samples=4)
    path = tmp_path_factory.mktemp("mw_cfg") / "cfg.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _start_workers(argv, ports):
    """`argv` in one process per port, worker `i` of a `TF_CONFIG` cluster on 127.0.0.1."""
    procs = []
    for index in range(len(ports)):
        env = dict(os.environ, TF_CONFIG=json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def _start(command, ports, extra):
    return _start_workers([sys.executable, "-m", "pwavenet_tf.cli", command, "--strategy",
                           "multi_worker", "--quiet", *extra], ports)


def _finish(procs, timeout=600):
    results = [proc.communicate(timeout=timeout) for proc in procs]
    # Every worker's error: the first failure is often another worker's "heartbeat timeout".
    assert all(p.returncode == 0 for p in procs), "\n".join(
        f"--- worker {i} exit {p.returncode}:\n{err[-3000:]}"
        for i, (p, (_, err)) in enumerate(zip(procs, results)) if p.returncode)
    return [out for out, _ in results]


def _fingerprints(outs):
    return [re.search(r"weights fingerprint: (\w+)", out).group(1) for out in outs]


def _worker_temporaries():
    import tempfile

    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("pwavenet-worker-")}


def test_two_workers_train_and_distill_with_the_chiefs_outputs(config_path, data_dir, tmp_path):
    before = _worker_temporaries()
    teacher = tmp_path / "teacher"
    common = ["--config", config_path, "--data", data_dir, "--steps", str(STEPS)]
    outs = _finish(_start("train-teacher", _free_ports(2), common + ["--out", str(teacher)]))
    a, b = _fingerprints(outs)
    assert a == b  # synchronous training: both workers hold the same weights
    assert json.loads((teacher / "metrics.json").read_text())["step"] == STEPS
    assert sorted(p.name for p in (teacher / "checkpoints").glob("ckpt-*.index")) == [
        "ckpt-10.index", "ckpt-20.index"]
    assert _worker_temporaries() == before  # the non-chief's copy is gone

    student = tmp_path / "student"
    outs = _finish(_start("distill", _free_ports(2),
                          common + ["--teacher", str(teacher), "--out", str(student),
                                    "--mixed-precision", "bfloat16"]))
    a, b = _fingerprints(outs)
    assert a == b
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["step"] == STEPS and metrics["kl_per_sample"] == metrics["kl_per_sample"]
    assert (student / "checkpoints" / f"ckpt-{STEPS}.index").exists()


def test_a_killed_worker_resumes_from_the_last_checkpoint(config_path, data_dir, tmp_path):
    out = tmp_path / "teacher"
    args = ["--config", config_path, "--data", data_dir, "--steps", str(4 * EVERY), "--out",
            str(out)]
    procs = _start("train-teacher", _free_ports(2), args)
    marker = out / "checkpoints" / f"ckpt-{EVERY}.index"
    deadline = time.time() + 600
    while not marker.exists():
        assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
        assert time.time() < deadline
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # the non-chief dies; the chief is stuck or fails
    procs[1].wait()
    time.sleep(1)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    assert not (out / "checkpoints" / f"ckpt-{4 * EVERY}.index").exists()

    outs = _finish(_start("train-teacher", _free_ports(2), args))
    assert all("resumed from" in o for o in outs), outs
    a, b = _fingerprints(outs)
    assert a == b
    assert json.loads((out / "metrics.json").read_text())["step"] == 4 * EVERY
