from pwavenet_tf.data.transcripts import read_transcripts
from pwavenet_tf.testing.data import ljspeech_mini_dir


def test_normalized_column_then_text_then_unknown(tmp_path):
    (tmp_path / "metadata.csv").write_text(
        "a|Mr. Smith, 1455.|Mister Smith, fourteen fifty-five.\n"
        "b|only the text|\n"
        "c|two fields\n"
        "d||\n"
        "e\n"
        "\n"
        "f| | spaced \r\n",
        encoding="utf-8",
    )
    assert read_transcripts(tmp_path) == {
        "a": "Mister Smith, fourteen fifty-five.",
        "b": "only the text",
        "c": "two fields",
        "f": "spaced",
    }


def test_no_metadata_is_empty(tmp_path):
    assert read_transcripts(tmp_path) == {}


def test_ljspeech_mini():
    texts = read_transcripts(ljspeech_mini_dir())
    assert texts["LJ001-0005"].startswith("the invention of movable metal letters")
