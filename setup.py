"""Build the Cython kernels: one extension per kernels/cython/<module>.pyx.

numpy, scipy and Cython come from [build-system] requires; they are imported only here,
inside the build. OpenMP, -march=native and -ffast-math are not used: the kernels are
serial and rely on the BLAS (scipy.linalg.cython_blas) for the GEMMs. The one extra flag,
-fno-math-errno (gcc/clang), changes no computed value: sqrt need not set errno, so the
optimizer loops compile to vector sqrt instead of a branch to libm per element.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

here = Path(__file__).parent
# FASTNN_BOUNDSCHECK=1 builds a debug variant with bounds and wraparound checks on.
debug = os.environ.get("FASTNN_BOUNDSCHECK") == "1"
# The generated .c files do not record the directives: regenerate them all when the mode
# differs from the last build's (else a stale checked or unchecked build is kept silently).
mode_stamp = here / "build" / "fastnn-boundscheck"
mode_changed = not mode_stamp.exists() or mode_stamp.read_text() != str(int(debug))

extensions = [
    Extension(
        f"fastnn.kernels.cython.{pyx.stem}",
        [str(pyx.relative_to(here))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=[] if os.name == "nt" else ["-fno-math-errno"],
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
mode_stamp.write_text(str(int(debug)))
