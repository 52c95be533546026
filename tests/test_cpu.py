"""What ``streamhand info`` and the run report say of the CPU: the model name, the cores and the instruction sets,
read from ``/proc/cpuinfo``'s text (x86 and ARM), and what is said where the file is missing."""

from __future__ import annotations

import pytest

from streamhand.cpu import cpu_facts, describe_cpu, parse_cpuinfo

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
