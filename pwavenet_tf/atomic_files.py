"""Files written so that a crash, a kill or a concurrent reader never sees half of one."""

import contextlib
import json
import os


def write_json(path, data, indent=2):
    """Writes `data` as JSON to `path` atomically: a flushed temp file renamed over it.

    A process killed mid-write leaves the previous file (or none), never a truncated one,
    and a process reading or copying `path` meanwhile sees the old or the new content. A
    write that fails (a full disk, data that is not JSON) removes its temp file and raises.
    """
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=indent, default=float)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
