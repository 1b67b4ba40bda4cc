import json

import pytest

from pwavenet_tf.config import Config, ConfigError, bundled_config_names, load_config


def test_bundled_configs_load_and_round_trip():
    assert {"tiny", "ljspeech", "paper"} <= set(bundled_config_names())
    for name in ("tiny", "ljspeech", "paper"):
        config = load_config(name)
        assert Config.from_dict(config.to_dict()) == config


def test_paper_config_matches_the_paper():
    c = load_config("paper")
    assert c.audio.sample_rate == 24000
    assert (c.teacher.num_layers, c.teacher.num_cycles, c.teacher.filter_size) == (30, 3, 3)
    assert c.teacher.num_mixtures == 10
    assert c.student.flow_layers == (10, 10, 10, 30) and c.student.channels == 64


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"teacher": {"num_layers": 4, "num_cycles": 1, "layerz": 3}}))
    with pytest.raises(ConfigError, match="Unknown key.*teacher.*layerz"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="Unknown config section.*trainer"):
        Config.from_dict({"trainer": {}})


@pytest.mark.parametrize("section,key,value,words", [
    ("teacher", "num_layers", "ten", "expected an integer"),
    ("teacher", "num_cycles", 7, "must divide num_layers"),
    ("audio", "sample_rate", 10, "must be >= 1000"),
    ("audio", "fmax", 20000.0, "sample_rate/2"),
    ("distill", "num_kl_samples", 0, "must be positive"),
    ("teacher_training", "ema_decay", 1.5, "in \\(0, 1\\)"),
    ("distill", "warmup_steps", -1, "must be >= 0"),
])
def test_bad_values_are_named(section, key, value, words):
    with pytest.raises(ConfigError, match=f"{section}.{key}.*{words}|{words}.*{key}"):
        Config.from_dict({section: {key: value}})


def test_cross_section_checks():
    with pytest.raises(ConfigError, match="upsample_factors.*hop_length=256"):
        Config.from_dict({"teacher": {"upsample_factors": [4, 4]}})
    with pytest.raises(ConfigError, match="window_samples.*multiple"):
        Config.from_dict({"distill": {"window_samples": 1000}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(str(bad))


def test_override_returns_a_new_config():
    c = load_config("tiny")
    d = c.override(distill={"steps": 7})
    assert d.distill.steps == 7 and c.distill.steps != 7
