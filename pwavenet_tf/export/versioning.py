"""TF Serving's versioned model layout: `BASE/NAME/VERSION/` with an integer VERSION.

TF Serving watches `--model_base_path=BASE/NAME` and serves the highest integer
sub-folder (by default). Versions are immutable: an existing version is never overwritten.
A new version is written into a hidden temporary folder beside it and renamed into place
once complete (`publish_version`), so a server polling the base path never loads half an
export.
"""

import os
import re
import shutil
import tempfile
import time

SAVED_MODEL_FILE = "saved_model.pb"
EXPORT_FORMAT = "pwavenet_tf SavedModel"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

__all__ = [
    "ExportError",
    "SAVED_MODEL_FILE",
    "list_versions",
    "next_version",
    "publish_version",
    "read_export_metadata",
    "resolve_saved_model_dir",
    "version_dir",
]


class ExportError(ValueError):
    """An export destination or exported model is invalid (names the path and the problem)."""


def _check_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ExportError(
            "The model name must be letters, digits, '_', '-' or '.' (a single folder name). "
            f"Received: name={name!r}"
        )
    return name


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(
            f"The version must be a positive integer (TF Serving's layout). Received: "
            f"version={version!r}"
        )
    return version


def list_versions(model_path):
    """Sorted integer versions found under `model_path` (= `BASE/NAME`); [] if none."""
    if not os.path.isdir(model_path):
        return []
    return sorted(int(d) for d in os.listdir(model_path)
                  if d.isdigit() and os.path.isdir(os.path.join(model_path, d)))


def next_version(model_path):
    """The next free version under `model_path`: one more than the highest, or 1."""
    versions = list_versions(model_path)
    return versions[-1] + 1 if versions else 1


def version_dir(base, name, version=None):
    """`(path, version)` of the new export `BASE/NAME/VERSION`; refuses an existing one.

    `version=None` picks `next_version`. Raises `ExportError` if that version folder exists
    (TF Serving versions are immutable: export a new version instead).
    """
    if not base:
        raise ExportError(f"The export base path must be given. Received: base={base!r}")
    if os.path.exists(base) and not os.path.isdir(base):
        raise ExportError(f"The export base path is a file, not a folder. Received: base={base!r}")
    name = _check_name(name)
    model_path = os.path.join(base, name)
    version = next_version(model_path) if version is None else _check_version(version)
    path = os.path.join(model_path, str(version))
    if os.path.exists(path):
        raise ExportError(
            f"Version {version} of model {name!r} already exists at {path}; versions are "
            f"immutable. Omit --version to write version {next_version(model_path)}, or "
            "remove the old version first."
        )
    return path, version


_OWNER_FILE = ".owner_pid"
_STALE_SECONDS = 3600


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(parent):
    """Removes `.tmp-*` export folders whose writer is gone (killed mid-export).

    A folder records its writer's pid; one without (or unreadable) counts as stale after an
    hour. Returns the removed names.
    """
    removed = []
    if not os.path.isdir(parent):
        return removed
    for name in os.listdir(parent):
        path = os.path.join(parent, name)
        if not name.startswith(".tmp-") or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, _OWNER_FILE)) as f:
                stale = not _process_alive(int(f.read().strip()))
        except (OSError, ValueError):
            stale = os.path.getmtime(path) < time.time() - _STALE_SECONDS
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def publish_version(path, write_fn):
    """Calls `write_fn(tmp_dir)` on a temporary folder, then renames it to `path` atomically.

    On failure the temporary folder is removed and `path` is not created; temporary folders
    of exports that were killed before they could clean up are removed first.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(parent)
    # Hidden and non-numeric: TF Serving ignores it while it is being written.
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(path)}-", dir=parent)
    try:
        with open(os.path.join(tmp, _OWNER_FILE), "w") as f:
            f.write(str(os.getpid()))
        write_fn(tmp)
        os.remove(os.path.join(tmp, _OWNER_FILE))
        # mkdtemp makes the folder private (0700); a server running as another user must
        # be able to read the published version.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if os.path.exists(path):
            raise ExportError(f"{path} appeared while exporting; refusing to overwrite it.")
        os.rename(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            # A write deep in the exporter (a full disk) names no file: name the version.
            raise OSError(e.errno, e.strerror, path) from e
        raise
    return path


def resolve_saved_model_dir(path):
    """The SavedModel folder of `path`: itself if it holds `saved_model.pb`, else the
    highest integer version under it (`BASE/NAME` -> `BASE/NAME/<latest>`). None if neither.
    """
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    for version in reversed(list_versions(path)):
        candidate = os.path.join(path, str(version))
        if os.path.isfile(os.path.join(candidate, SAVED_MODEL_FILE)):
            return candidate
    return None


def read_export_metadata(path):
    """The metadata (`assets/config.json`) of a pwavenet export, checked BEFORE loading it.

    A SavedModel can hold arbitrary graph ops (reading or writing files when called), so
    only trusted exports should be loaded; this refuses folders that do not carry this
    package's metadata, which catches a wrong or foreign model before any of its code runs.
    It does not make an untrusted export safe (see docs/serving.md).
    """
    import json

    meta_path = os.path.join(path, "assets", "config.json")
    why = None
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        why = "assets/config.json is missing"
    except (OSError, ValueError) as e:
        why = f"assets/config.json cannot be read ({e})"
    else:
        if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
            why = f"assets/config.json does not say format {EXPORT_FORMAT!r}"
    if why:
        raise ExportError(
            f"{path} is a SavedModel but not a pwavenet_tf export ({why}); refusing to load "
            "it. Only load exports you trust: a SavedModel can run arbitrary graph ops."
        )
    return meta
