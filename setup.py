"""Build the Cython kernels: one extension per kernels/cython/<module>.pyx (conv, dense,
loss, optim, train; each found by the glob below, so a new module needs no entry here).

numpy, scipy and Cython come from [build-system] requires; they are imported only here,
inside the build. -march=native and -ffast-math are not used; the GEMMs go to the BLAS
(scipy.linalg.cython_blas). The extra flag -fno-math-errno (gcc/clang) changes no
computed value: sqrt need not set errno, so the optimizer loops compile to vector sqrt
instead of a branch to libm per element.

OpenMP: the training kernels (train.pyx) run each dense layer's column blocks and each
conv or pool layer's samples on all cores when the compiler supports -fopenmp (checked
by compiling a test program);
FASTNN_OPENMP=0 builds the serial version, which gives the same bits. The other modules
(conv.pyx included: its kernels are serial) are built without it. FASTNN_BOUNDSCHECK=1
turns Cython's bounds, wraparound and initialization checks on in every module.
"""

import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

here = Path(__file__).parent
# FASTNN_BOUNDSCHECK=1 builds a debug variant with bounds and wraparound checks on.
debug = os.environ.get("FASTNN_BOUNDSCHECK") == "1"
# The generated .c files do not record the directives: regenerate them all when the mode
# (checks, OpenMP) differs from the last build's (else a stale build is kept silently).



def openmp_flag():
    """-fopenmp if the C compiler builds and links an OpenMP program with it, else None."""
    if os.environ.get("FASTNN_OPENMP") == "0" or os.name == "nt":
        return None
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp.c"
        src.write_text("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            subprocess.run([*cc, "-fopenmp", str(src), "-o", str(Path(tmp) / "omp")],
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            print("fastnn: the C compiler has no OpenMP; building the serial kernels",
                  file=sys.stderr)
            return None
    return "-fopenmp"


openmp = openmp_flag()
# the build's OpenMP setting is part of its mode: a change regenerates the .c files
mode = f"{int(debug)}-{int(openmp is not None)}"
mode_stamp = here / "build" / "fastnn-build-mode"
mode_changed = not mode_stamp.exists() or mode_stamp.read_text() != mode
base_flags = [] if os.name == "nt" else ["-fno-math-errno", "-ffp-contract=off"]
extensions = [
    Extension(
        f"fastnn.kernels.cython.{pyx.stem}",
        [str(pyx.relative_to(here))],
        include_dirs=[np.get_include(), str(here / "kernels" / "cython")],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=base_flags + ([openmp] if openmp and pyx.stem == "train" else []),
        extra_link_args=[openmp] if openmp and pyx.stem == "train" else [],
    )
    for pyx in sorted((here / "kernels" / "cython").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        # the .pyx files cimport their shared .pxd (_common) by its plain name
        include_path=[str(here / "kernels" / "cython")],
        compiler_directives={
            "language_level": "3",
            "boundscheck": debug,
            "wraparound": debug,
            "initializedcheck": debug,
            "cdivision": True,
        },
        force=mode_changed,
    )
)
mode_stamp.parent.mkdir(exist_ok=True)
mode_stamp.write_text(mode)
