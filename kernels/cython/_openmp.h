/* The OpenMP runtime where the build has it (setup.py compiles train.pyx with -fopenmp
   when the compiler supports it), one thread where it does not: the kernels ask here. */
#ifdef _OPENMP
#include <omp.h>
static int fastnn_max_threads(void) { return omp_get_max_threads(); }
static int fastnn_openmp(void) { return 1; }
#else
static int fastnn_max_threads(void) { return 1; }
static int fastnn_openmp(void) { return 0; }
#endif
