"""Build the compiled kernels of csoftmax.

Each .pyx under csoftmax/ is one extension module; the C kernels they share
are headers in csoftmax/include/, compiled into _runtime, whose baseline,
x86-64-v3 and v4 copies are units of their own (csoftmax/src/) so that they
compile in parallel (CSOFTMAX_BUILD_JOBS=N compilers at once; default, the CPUs
this process may use).  OpenMP is used where the
compiler has it (-fopenmp for GCC/Clang, /openmp for MSVC); where it does not,
the kernels build serially with a warning.  Optimisation flags keep IEEE
semantics: no -ffast-math (it assumes no inf/nan and breaks -inf masking), no
-march=native (the kernels for newer instruction sets are compiled in and chosen
at import time, see csoftmax/include/cs_dispatch.h).

CSOFTMAX_MAX_LEVEL=3 (or 0) leaves the x86-64 levels above it out of the
build, as if the CPU had none of them: for a build that only ever runs on one
machine (CI's sanitizer build, whose instrumented units each take minutes).

CSOFTMAX_V4_ON_V3=1 compiles the x86-64-v4 kernels for x86-64-v3 and runs them
on any CPU with v3: a test build, so that a CPU without AVX-512 runs the v4
kernels' code paths (never for a release: the level is then v4 in name only).

Release builds carry no debug info (-g0, whatever CPython's own CFLAGS say):
CSOFTMAX_DEBUG=1 in the environment keeps it.  The compiler and flags used are
recorded in the generated csoftmax/_build_info.py, which show_config() prints.
"""
import os
import shlex
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

MODULES = ["_alloc", "_runtime", "_forward", "_backward", "_jacobian", "_loss"]
PACKAGE = "csoftmax"
HEADERS = os.path.join(PACKAGE, "include")
# _runtime holds the kernels.  Each level's copy is a translation unit of its
# own (v3 and v4 are empty where the build has no such levels), compiled side
# by side with _runtime's Cython unit; they include no Python header, so a
# compiler cache shares them between builds for different Pythons.
LEVEL_UNITS = [os.path.join(PACKAGE, "src", f"cs_ops_{level}.c") for level in ("base", "v3", "v4")]


def _max_level():
    """CSOFTMAX_MAX_LEVEL as the macro that sets it, or none (every level)."""
    value = os.environ.get("CSOFTMAX_MAX_LEVEL", "")
    if not value:
        return []
    if value not in ("0", "3", "4"):
        raise ValueError(f"CSOFTMAX_MAX_LEVEL must be 0, 3 or 4, got {value!r}")
    return [("CS_MAX_LEVEL", value)]


def _v4_on_v3():
    """CSOFTMAX_V4_ON_V3=1 as its macro, or none."""
    value = os.environ.get("CSOFTMAX_V4_ON_V3", "")
    if value not in ("", "0", "1"):
        raise ValueError(f"CSOFTMAX_V4_ON_V3 must be 0 or 1, got {value!r}")
    return [("CS_V4_ON_V3", "1")] if value == "1" else []


def _jobs():
    """How many compilers run at once: CSOFTMAX_BUILD_JOBS, else the CPUs
    this process may use."""
    if os.environ.get("CSOFTMAX_BUILD_JOBS"):
        return max(1, int(os.environ["CSOFTMAX_BUILD_JOBS"]))
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _parallel_compile(compile_sources, jobs):
    """A compiler's compile() that takes an extension's sources side by side,
    one compiler process each (distutils takes them one after another)."""
    def compile(sources, *args, **kwargs):
        if len(sources) < 2:
            return compile_sources(sources, *args, **kwargs)
        with ThreadPoolExecutor(min(jobs, len(sources))) as pool:
            objects = pool.map(lambda source: compile_sources([source], *args, **kwargs), sources)
            return [obj for part in objects for obj in part]
    return compile


def _compiles(compiler, flags, code="int main(void) { return 0; }\n", libs=()):
    """Whether a tiny C program builds and links with these flags (and the
    user's CFLAGS and LDFLAGS: a sanitizer build links its runtime)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            user = shlex.split(os.environ.get("CFLAGS", "")) + shlex.split(os.environ.get("LDFLAGS", ""))
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=flags + user,
                                     libraries=list(libs))
        except Exception:
            return False
    return True


_CLANG_X86 = """#if !defined(__clang__) || !defined(__x86_64__)
#error not clang on x86-64
#endif
int main(void) { return 0; }
"""


class BuildExt(build_ext):
    def build_extensions(self):
        cc = self.compiler
        if cc.compiler_type == "msvc":
            compile_args, link_args = ["/O2", "/openmp"], []
        else:
            # -fno-wrapv undoes CPython's -fwrapv: with wrapping signed
            # arithmetic the strided row loops vectorise worse (measured 20-50 %).
            # No -std=c99: GCC's ISO modes turn off FMA contraction (-ffp-contract=off),
            # which the exp polynomials rely on for speed (measured 20 %).
            compile_args = ["-O3", "-fno-wrapv", "-fno-math-errno", "-fno-trapping-math"]
            # and -fno-wrapv-pointer the rest of CPython 3.12's -fno-strict-overflow
            # (-fwrapv and -fwrapv-pointer): the same code on every CPython
            if _compiles(cc, ["-fno-wrapv-pointer"]):
                compile_args.append("-fno-wrapv-pointer")
            omp = ["-fopenmp"]
            omp_code = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
            if os.environ.get("CSOFTMAX_NO_OPENMP") or not _compiles(cc, omp, omp_code):
                warnings.warn("the compiler has no OpenMP: building csoftmax's kernels serially")
                omp = []
                # `omp simd` still matters without threads: the kernels' sums
                # are taken in vector lanes (their accuracy counts on it)
                if _compiles(cc, ["-fopenmp-simd"]):
                    compile_args.append("-fopenmp-simd")
            compile_args += omp
            link_args = list(omp)
            if not os.environ.get("CSOFTMAX_DEBUG"):
                # last on the command line, so it overrides the -g in CPython's CFLAGS:
                # debug info is 80 % of the modules' size
                compile_args.append("-g0")
            # clang takes the x86-64-v4 kernels' 512-bit vectors from this flag
            # (its target attribute refuses prefer-vector-width; see
            # cs_dispatch.h); functions without AVX-512 are not affected
            if _compiles(cc, ["-mprefer-vector-width=512"], _CLANG_X86):
                compile_args.append("-mprefer-vector-width=512")
        for ext in self.extensions:
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
        self._write_build_info(compile_args, link_args)
        jobs = _jobs()
        if jobs > 1 and cc.compiler_type == "unix":
            # the modules side by side, and the sources of one module (the
            # kernels' level units take most of the build: about 100 of 120
            # CPU-seconds)
            self.parallel = jobs
            cc.compile = _parallel_compile(cc.compile, jobs)
        super().build_extensions()

    def _write_build_info(self, compile_args, link_args):
        cc = self.compiler
        command = getattr(cc, "compiler_so", None) or [cc.compiler_type]
        macros = dict(self.extensions[0].define_macros)
        info = {
            "compiler": shlex.join(command),
            "compile_args": compile_args,
            "link_args": link_args,
            "numpy_build_version": np.__version__,
            "npy_target_version": macros.get("NPY_TARGET_VERSION"),
            "debug": bool(os.environ.get("CSOFTMAX_DEBUG")),
            "max_level": dict(_max_level()).get("CS_MAX_LEVEL"),
            "v4_on_v3": bool(_v4_on_v3()),
        }
        path = os.path.join(os.path.dirname(self.get_ext_fullpath("csoftmax._runtime")), "_build_info.py")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write('"""How this copy of csoftmax was compiled (written by setup.py)."""\n')
            f.write(f"BUILD_INFO = {info!r}\n")


extensions = [
    Extension(
        f"csoftmax.{name}",
        [os.path.join(PACKAGE, f"{name}.pyx")] + (LEVEL_UNITS if name == "_runtime" else []),
        include_dirs=[np.get_include(), HEADERS],
        # NPY_TARGET_VERSION: the oldest NumPy C API the modules may use, set
        # explicitly (the headers' default is 1.21 in NumPy 2.0-2.2, too old for
        # _alloc's PyDataMem_SetHandler; 2.0 also runs on any newer NumPy)
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                       ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION")]
                      + ([("CS_SPLIT_LEVELS", "1")] + _max_level() + _v4_on_v3() if name == "_runtime" else []),
        depends=[os.path.join(HEADERS, h) for h in os.listdir(HEADERS)],
    )
    for name in MODULES
]

setup(
    # freethreading_compatible: the modules keep no state that needs the GIL (the
    # runtime's settings are atomic, the block cache has its own lock), so a
    # free-threaded CPython keeps the GIL off when it imports them
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"embedsignature": True, "freethreading_compatible": True}),
    cmdclass={"build_ext": BuildExt},
)
