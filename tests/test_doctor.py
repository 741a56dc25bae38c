"""`localchat doctor`: parsing what llama.cpp reports, the diagnosis on canned machines, and the real command."""

import json
import subprocess
import sys

from localchat.doctor import diagnose, parse_system_info, slow_build_note
from localchat.hardware import Gpu

CPU_BUILD = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | OPENMP = 1 | REPACK = 1 | "
CUDA_BUILD = "CUDA : ARCHS = 900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | " + CPU_BUILD
AMX_BUILD = CPU_BUILD + "AMX_INT8 = 1 | "
H100 = {"name": "CUDA0", "description": "NVIDIA H100 80GB HBM3", "kind": "gpu",
        "free_bytes": 80 * 2**30, "total_bytes": 81 * 2**30}  # fmt: skip
CPU = {"name": "CPU", "description": "Xeon", "kind": "cpu", "free_bytes": 2**34, "total_bytes": 2**34}
X86 = {"avx", "avx2", "fma", "f16c", "avx512f"}


def probe(system_info: str, offload: bool = False, devices: tuple = (CPU,)) -> dict:
    return {"llama_cpp_python": "0.3.36", "system_info": system_info, "gpu_offload": offload, "devices": list(devices)}


def levels(report) -> dict[str, str]:
    return {f.level + ":" + f.topic: f.text for f in report.findings}


def test_system_info_parsing() -> None:
    backends = parse_system_info(CUDA_BUILD)
    assert list(backends) == ["CUDA", "CPU"]
    assert backends["CUDA"] == {"ARCHS": "900", "USE_GRAPHS": "1", "PEER_MAX_BATCH_SIZE": "128"}
    assert backends["CPU"]["AVX512"] == "1" and "AMX_INT8" not in backends["CPU"]
    metal = parse_system_info("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 | ")
    assert metal["Metal"] == {"EMBED_LIBRARY": "1"} and metal["CPU"]["NEON"] == "1"
    assert parse_system_info("") == {}


def test_cuda_build_with_a_gpu_is_healthy() -> None:
    report = diagnose(probe(CUDA_BUILD, True, (H100, CPU)), None, X86, "x86_64", "Linux", [])
    assert report.worst == "ok"
    texts = " ".join(f.text for f in report.findings)
    assert "GPU offload: yes (CUDA: ARCHS=900" in texts and "NVIDIA H100 80GB HBM3, 80.0 of 81.0 GiB free" in texts


def test_amx_build_on_an_amx_cpu_is_the_known_crash() -> None:
    report = diagnose(probe(AMX_BUILD), None, X86 | {"amx_int8", "amx_tile"}, "x86_64", "Linux", [])
    assert report.worst == "warn"
    assert any("segfaults" in f.text and "localchat doctor --fix" in f.text for f in report.findings)
    good = diagnose(probe(CPU_BUILD), None, X86 | {"amx_int8", "amx_tile"}, "x86_64", "Linux", [])
    assert good.worst == "ok" and any("AMX CPU, build without" in f.text for f in good.findings)


def test_a_gpu_with_a_cpu_only_build_says_how_to_rebuild() -> None:
    report = diagnose(probe(CPU_BUILD), None, X86, "x86_64", "Linux", [Gpu("NVIDIA L4", 24 << 30, 20 << 30)])
    warning = next(f for f in report.findings if f.level == "warn")
    assert "NVIDIA L4" in warning.text and "-DGGML_CUDA=on" in warning.text


def test_missing_simd_and_apple_without_metal() -> None:
    report = diagnose(probe("CPU : SSE3 = 1 | AVX = 1 | "), None, X86, "x86_64", "Linux", [])
    assert any("AVX2" in f.text and "does not use" in f.text for f in report.findings)
    mac = diagnose(probe("CPU : NEON = 1 | "), None, set(), "arm64", "Darwin", [])
    assert any("-DGGML_METAL=on" in f.text for f in mac.findings)


def test_a_broken_build_is_an_error_with_the_fix() -> None:
    report = diagnose(None, "the probe failed (signal 11)", X86, "x86_64", "Linux", [])
    assert report.worst == "error" and "signal 11" in report.findings[0].text


def test_doctor_on_this_machine() -> None:
    result = subprocess.run([sys.executable, "-m", "localchat", "doctor", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["probe"]["devices"][0]["kind"] == "cpu"
    assert any(f["topic"] == "build" for f in report["findings"])
    text = subprocess.run([sys.executable, "-m", "localchat", "doctor"], capture_output=True, text=True).stdout
    assert text.startswith("[✓] build") and "[✓] gpu" in text


def test_a_slow_build_is_named_with_the_one_command_that_fixes_it() -> None:
    """What the engine reports with a loaded model (the app shows it once): AMX compiled in on an AMX CPU, or SIMD
    this CPU has that the build leaves out; nothing for a right build (llama.cpp does not report SSE 4.2)."""
    amx = slow_build_note(
        "CPU : AVX = 1 | AVX2 = 1 | FMA = 1 | F16C = 1 | AVX512 = 1 | AMX_INT8 = 1 | ", X86 | {"amx_int8"}
    )
    assert amx and "AMX compiled in" in amx and "`localchat doctor --fix`" in amx
    no_avx512 = slow_build_note("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 | F16C = 1 | ", X86 | {"sse4_2"})
    assert no_avx512 and "does not use AVX512, which this CPU has" in no_avx512
    right = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 | F16C = 1 | AVX512 = 1 | "
    assert slow_build_note(right, X86 | {"sse4_2"}) is None


def test_native_code_loaded_before_llama_cpp_is_named() -> None:
    """The H200 crash: numpy (or sentencepiece, gguf...) imported before llama_cpp in the engine process."""
    report = diagnose(
        {**probe(CPU_BUILD), "native_before_llama": ["numpy._core._multiarray_umath"]}, None, X86, "x86_64", "Linux", []
    )
    (finding,) = [f for f in report.findings if f.topic == "engine"]
    assert finding.level == "warn" and finding.text.startswith("numpy was loaded before llama.cpp")
    clean = diagnose(probe(CPU_BUILD), None, X86, "x86_64", "Linux", [])
    assert [f.level for f in clean.findings if f.topic == "engine"] == ["ok"]


def test_the_probe_sees_what_python_loaded_before_llama_cpp() -> None:
    """Real processes: the engine's own start loads nothing native first; a startup hook that imports numpy is
    seen (run here as a wrapper that imports numpy, then the probe, as a sitecustomize would)."""
    clean = subprocess.run([sys.executable, "-m", "localchat.engine.probe"], capture_output=True, text=True)
    assert json.loads(clean.stdout)["native_before_llama"] == []
    hooked = subprocess.run(
        [sys.executable, "-c", "import numpy, runpy; runpy.run_module('localchat.engine.probe', run_name='__main__')"],
        capture_output=True,
        text=True,
    )
    before = json.loads(hooked.stdout)["native_before_llama"]
    assert before and all(name.startswith("numpy") for name in before)
