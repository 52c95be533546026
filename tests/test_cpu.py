"""What ``streamhand info`` and the run report say of the CPU: the model name, the cores and the instruction sets,
read from ``/proc/cpuinfo``'s text (x86 and ARM), and what is said where the file is missing."""

from __future__ import annotations

import pytest

from streamhand.cpu import bf16_at_speed, cpu_facts, describe_cpu, parse_cpuinfo

X86_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx fma avx2 bmi2
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx fma avx2 bmi2
"""
X86_VNNI = "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 fma avx512f avx512_vnni amx_int8\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp\nCPU implementer\t: 0x41\n"
X86_AVX512 = "model name\t: Intel(R) Xeon(R) Gold 6230\nflags\t\t: avx2 fma avx512f avx512bw\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd asimddp sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("text", "model", "flags"),
    [
        (X86_AVX2, "AMD EPYC 7B13", ["avx2", "fma"]),
        (X86_VNNI, "Intel(R) Xeon(R) Platinum 8481C", ["avx2", "fma", "avx512f", "avx512_vnni", "amx_int8"]),
        (ARM, None, ["asimd", "asimddp"]),
        ("", None, []),
        ("garbage without colons\n\x00\n", None, []),
    ],
)
def test_cpuinfo_is_read(text, model, flags):
    assert parse_cpuinfo(text) == (model, flags)


def test_facts_here_and_without_cpuinfo(tmp_path):
    here = cpu_facts()
    assert here["cores"] >= 1 and isinstance(here["model"], str) and here["model"]
    missing = cpu_facts(tmp_path / "none")
    assert missing["flags"] == [] and missing["cores"] == here["cores"] and missing["model"]
    f = tmp_path / "cpuinfo"
    f.write_text(X86_AVX2)
    assert describe_cpu({**cpu_facts(f), "cores": 2}) == "AMD EPYC 7B13, 2 cores (avx2, fma)"
    assert describe_cpu({"model": "x", "cores": 1, "flags": []}) == "x, 1 core"


@pytest.mark.parametrize(
    ("text", "at_speed"),
    [
        (X86_AVX2, False),  # AVX2 alone: PyTorch's bf16 takes its slow path
        (X86_AVX512, True),  # oneDNN's AVX-512 kernels (bf16 emulated)
        (X86_VNNI, True),
        ("flags\t\t: avx2 avx512_bf16\n", True),
        (ARM, False),
        (ARM_BF16, True),
        ("model name\t: a CPU whose file lists no flags\n", None),
        ("", None),
    ],
)
def test_bf16_at_speed_from_the_instruction_sets(tmp_path, text, at_speed):
    f = tmp_path / "cpuinfo"
    f.write_text(text)
    assert bf16_at_speed(f) is at_speed


def test_bf16_at_speed_without_cpuinfo(tmp_path):
    assert bf16_at_speed(tmp_path / "none") is None
