"""Build the Cython kernels: one extension per kernels/cython/<module>.pyx.

numpy, scipy and Cython come from [build-system] requires; they are imported only here,
inside the build. OpenMP and -march=native are not used: the kernels are serial and
rely on the BLAS (scipy.linalg.cython_blas) for the GEMMs.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

here = Path(__file__).parent
# FASTNN_BOUNDSCHECK=1 builds a debug variant with bounds and wraparound checks on.
debug = os.environ.get("FASTNN_BOUNDSCHECK") == "1"

extensions = [
    Extension(
        f"fastnn.kernels.cython.{pyx.stem}",
        [str(pyx.relative_to(here))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for pyx in sorted((here / "kernels" / "cython").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": debug,
            "wraparound": debug,
            "initializedcheck": debug,
            "cdivision": True,
        },
    )
)
