"""show_config(), `python -m csoftmax`, and what the environment may not break."""
import subprocess
import sys
import tempfile

import pytest

import csoftmax
from csoftmax import _runtime
from helpers import run_python


def _run(code, **env):
    import os
    return run_python(code, env={**os.environ, **env})


def test_show_config_dicts():
    info = csoftmax.show_config(mode="dicts")
    assert info["kernels"]["level"] == _runtime.isa()
    assert info["threads"]["num_threads"] == csoftmax.get_num_threads()
    assert info["openmp"]["enabled"] == _runtime.has_openmp()
    if _runtime.has_openmp():
        assert _runtime.openmp_version() >= 200505
        assert info["openmp"]["specification"]
        if sys.platform.startswith("linux"):
            assert "omp" in info["openmp"]["runtime"]
    else:
        assert info["openmp"]["specification"] is None
    assert {"enabled", "blocks", "bytes", "min_block", "max_bytes", "slots"} <= set(info["block_cache"])
    assert info["build"] is None or "-g0" in info["build"]["compile_args"] or info["build"]["debug"]


def test_show_config_prints(capsys):
    assert csoftmax.show_config() is None
    out = capsys.readouterr().out
    assert f"level: {_runtime.isa()}" in out and "num_threads:" in out


def test_show_config_bad_mode():
    with pytest.raises(ValueError, match="'json'"):
        csoftmax.show_config(mode="json")


def test_python_m_csoftmax():
    r = subprocess.run([sys.executable, "-m", "csoftmax"], capture_output=True, text=True, timeout=120,
                       cwd=tempfile.gettempdir())
    assert r.returncode == 0, r.stderr
    assert "kernels:" in r.stdout and "openmp:" in r.stdout


@pytest.mark.parametrize("value", ["avx2", "x86-64-v9"])
def test_bad_isa_warns_and_imports(value):
    r = _run("import csoftmax, csoftmax._runtime as r; print(r.isa() == r.cpu_level())", CSOFTMAX_ISA=value)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
    assert "RuntimeWarning" in r.stderr and repr(value) in r.stderr


def test_good_isa_is_used():
    r = _run("import csoftmax._runtime as r; print(r.isa())", CSOFTMAX_ISA="baseline")
    assert r.returncode == 0 and r.stdout.strip() == "baseline", r.stderr
