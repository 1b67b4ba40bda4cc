import pytest

from pwavenet_tf.training.precision import (cpu_flags, dtype_policy, precision_name,
                                            precision_warning)


def test_names_policies_and_the_boolean_alias():
    assert [precision_name(v) for v in (None, False, True, "bfloat16")] == [
        "off", "off", "float16", "bfloat16"]
    assert dtype_policy("bfloat16") == "mixed_bfloat16" and dtype_policy(True) == "mixed_float16"
    assert dtype_policy("off") is None
    with pytest.raises(ValueError, match="Received: mixed_precision='fp8'"):
        precision_name("fp8")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_bf16\nbugs\t: x\n")
    assert cpu_flags(str(info)) == {"fpu", "sse", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) is None
    (tmp_path / "noflags").write_text("processor\t: 0\n")
    assert cpu_flags(str(tmp_path / "noflags")) is None


@pytest.mark.parametrize("precision,accelerators,flags,warns", [
    ("off", False, {"avx2"}, None),
    ("bfloat16", False, {"avx2", "fma"}, "AVX512-BF16"),
    ("bfloat16", False, {"avx2", "avx512_bf16"}, None),
    ("bfloat16", False, {"amx_bf16"}, None),
    ("bfloat16", True, {"avx2"}, None),
    ("float16", False, {"avx512_bf16"}, "without a GPU"),
    ("float16", True, set(), None),
    (True, False, {"avx2"}, "float16 without a GPU"),
])
def test_a_warning_names_emulated_precisions(precision, accelerators, flags, warns):
    got = precision_warning(precision, accelerators=accelerators, flags=flags)
    if warns is None:
        assert got is None
    else:
        assert warns in got and "\n" not in got and "float32" in got
