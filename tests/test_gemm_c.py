"""The GEMM's own C test program (tests/c/test_gemm.c), built and run from pytest: every
micro-kernel against a naive double-accumulation oracle over edge shapes, layouts, epilogues and
thread counts, with no Python in between."""
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


def test_gemm_c_program(tmp_path):
    exe = tmp_path / "test_gemm"
    sources = sorted(str(p) for p in (ROOT / "csrc").glob("gemm*.c"))
    sources += [str(ROOT / "csrc" / "threads.c"), str(ROOT / "csrc" / "activations.c"),
                str(ROOT / "tests" / "c" / "test_gemm.c")]
    cmd = [compiler(), "-std=gnu11", "-O2", "-ffp-contract=off", "-fopenmp", "-DFM_TEST_REAL_ACT",
           f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc'}", *sources, "-lm", "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    sys.stdout.write(run.stdout[-2000:])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    last = [line for line in run.stdout.splitlines() if line.strip()][-1]
    passed, failed = (int(part.split()[0]) for part in last.split(","))
    assert failed == 0 and passed > 1000, last
