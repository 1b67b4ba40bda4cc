import json

import pytest

from pwavenet_tf.atomic_files import write_json


def test_write_json_round_trips_and_replaces(tmp_path):
    path = tmp_path / "m.json"
    write_json(str(path), {"step": 1})
    write_json(str(path), {"step": 2, "x": [1.5]}, indent=1)
    assert json.loads(path.read_text()) == {"step": 2, "x": [1.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "config.json"
    write_json(str(path), {"step": 1})
    with pytest.raises(TypeError):
        write_json(str(path), {"step": 2, "bad": object()})  # fails half-way through
    assert json.loads(path.read_text()) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left
