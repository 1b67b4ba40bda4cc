"""TF Serving's BASE/NAME/VERSION layout: next free version, no overwrite, atomic publish."""

import os

import pytest

from pwavenet_tf.export.versioning import (
    ExportError,
    list_versions,
    next_version,
    publish_version,
    resolve_saved_model_dir,
    version_dir,
)


def _touch_saved_model(path):
    os.makedirs(path, exist_ok=True)
    open(os.path.join(path, "saved_model.pb"), "wb").close()


def test_next_free_version(tmp_path):
    model = tmp_path / "m"
    assert list_versions(str(model)) == [] and next_version(str(model)) == 1
    for v in ("1", "3", "10", "notes", ".tmp-4-x"):
        (model / v).mkdir(parents=True)
    (model / "7").write_text("a file, not a version")
    assert list_versions(str(model)) == [1, 3, 10]
    assert next_version(str(model)) == 11
    assert version_dir(str(tmp_path), "m") == (str(model / "11"), 11)
    assert version_dir(str(tmp_path), "m", 2) == (str(model / "2"), 2)


def test_existing_version_is_refused(tmp_path):
    (tmp_path / "m" / "3").mkdir(parents=True)
    with pytest.raises(ExportError, match=r"Version 3 of model 'm' already exists .* "
                                          r"Omit --version to write version 4"):
        version_dir(str(tmp_path), "m", 3)


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".hidden", None])
def test_bad_names(tmp_path, name):
    with pytest.raises(ExportError, match="model name"):
        version_dir(str(tmp_path), name)


@pytest.mark.parametrize("version", [0, -1, 1.5, "2", True])
def test_bad_versions(tmp_path, version):
    with pytest.raises(ExportError, match="positive integer"):
        version_dir(str(tmp_path), "m", version)


def test_base_must_be_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        version_dir(str(f), "m")


def test_publish_is_atomic(tmp_path):
    path = str(tmp_path / "m" / "1")

    def write(tmp):
        assert os.path.basename(tmp).startswith(".tmp-1-")  # hidden, non-numeric
        open(os.path.join(tmp, "saved_model.pb"), "wb").close()

    assert publish_version(path, write) == path
    assert os.listdir(tmp_path / "m") == ["1"]
    assert os.stat(path).st_mode & 0o055  # readable by others (not mkdtemp's 0700)

    def fail(tmp):
        open(os.path.join(tmp, "partial"), "w").close()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        publish_version(str(tmp_path / "m" / "2"), fail)
    assert os.listdir(tmp_path / "m") == ["1"]  # nothing half-written is left behind


def test_resolve_saved_model_dir(tmp_path):
    base = tmp_path / "m"
    assert resolve_saved_model_dir(str(base)) is None
    _touch_saved_model(str(base / "1"))
    _touch_saved_model(str(base / "2"))
    (base / "3").mkdir()  # an empty (e.g. failed) version is skipped
    assert resolve_saved_model_dir(str(base)) == str(base / "2")
    assert resolve_saved_model_dir(str(base / "1")) == str(base / "1")


def test_temporaries_of_a_killed_export_are_removed_by_the_next_one(tmp_path):
    import subprocess
    import sys
    import time

    model = tmp_path / "m"
    model.mkdir()
    # A writer that was killed: its pid no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = model / ".tmp-1-abc"
    killed.mkdir()
    (killed / ".owner_pid").write_text(str(dead.pid))
    (killed / "saved_model.pb").write_bytes(b"half")
    # A live concurrent writer (this process) and an old folder of an earlier version.
    live = model / ".tmp-2-def"
    live.mkdir()
    (live / ".owner_pid").write_text(str(os.getpid()))
    old = model / ".tmp-3-ghi"
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    publish_version(str(model / "4"), _touch_saved_model)
    assert sorted(os.listdir(model)) == [".tmp-2-def", "4"]
    assert os.listdir(model / "4") == ["saved_model.pb"]  # the owner marker is not published
