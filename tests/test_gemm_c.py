"""The C test programs, built and run from pytest with no Python in between: the GEMM's
(tests/c/test_gemm.c: every micro-kernel against a naive double-accumulation oracle over edge
shapes, layouts, epilogues and thread counts) and the SIMD clones' (tests/c/test_clones.c: the
AVX-512 and AVX2 copies of the elementwise kernels give the baseline copy's bits)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compiler():
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler found (set CC): the C-level GEMM test needs one")
    return cc


def build_c_program(exe, sources, flags):
    """Compiles a C test program against the library's headers; fails the test if it does not."""
    cmd = [compiler(), "-std=gnu11", *flags, f"-I{ROOT / 'csrc' / 'include'}",
           f"-I{ROOT / 'csrc'}", *(str(s) for s in sources), "-lm", "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr


def test_gemm_c_program(tmp_path):
    exe = tmp_path / "test_gemm"
    sources = sorted((ROOT / "csrc").glob("gemm*.c"))
    sources += [ROOT / "csrc" / "threads.c", ROOT / "csrc" / "activations.c",
                ROOT / "tests" / "c" / "test_gemm.c"]
    build_c_program(exe, sources, ["-O2", "-ffp-contract=off", "-fopenmp", "-DFM_TEST_REAL_ACT"])
    passed, failed = counts(run_c_program(exe))
    assert failed == 0 and passed > 1000, (passed, failed)


def run_c_program(exe):
    """Runs a C test program that succeeds; its last line."""
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    sys.stdout.write(run.stdout[-2000:])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return [line for line in run.stdout.splitlines() if line.strip()][-1]


def counts(last):
    """(P, F) from a last line 'P passed, F failed'."""
    return tuple(int(part.split()[0]) for part in last.split(","))


def test_simd_clones_c_program(tmp_path):
    exe = tmp_path / "test_clones"
    # the library's own flags (CMakeLists.txt)
    build_c_program(exe, [ROOT / "tests" / "c" / "test_clones.c", ROOT / "csrc" / "threads.c"],
                    ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp"])
    last = run_c_program(exe)
    if last.startswith("no SIMD"):
        pytest.skip("this compiler and platform build no SIMD clones (target_clones: GCC on "
                    "x86-64 Linux), so there is nothing to compare")
    passed, failed = counts(last)
    assert failed == 0 and passed >= 22, (passed, failed)  # 11 kinds x 2 dtypes, each clone
