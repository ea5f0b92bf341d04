/* The OpenMP runtime where the build has it (setup.py compiles train.pyx with -fopenmp
   when the compiler supports it), one thread where it does not: the kernels ask here. */
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
static int fastnn_max_threads(void) { return omp_get_max_threads(); }
static int fastnn_thread_num(void) { return omp_get_thread_num(); }
static int fastnn_openmp(void) { return 1; }
#else
static int fastnn_max_threads(void) { return 1; }
static int fastnn_thread_num(void) { return 0; }
static int fastnn_openmp(void) { return 0; }
#endif

/* Seconds on a monotonic clock (for pacing the parallel loops, never for results). */
static double fastnn_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The parallel loops' record (kernels/cython/train.pyx: _parallel, _ran, _paced), one per
   calling thread, kept from call to call: only the calling thread (OpenMP thread 0 of
   its regions) reads or writes its own. */
typedef struct {
    Py_ssize_t items;          /* blocks of the running region */
    Py_ssize_t caller_items;   /* of them, run by the calling thread */
    double start;              /* the region's start */
    double caller_done;        /* the end of the calling thread's last block */
    Py_ssize_t backoff;        /* serial loops to run after the next lost region */
    Py_ssize_t serial_left;    /* serial loops still to run before the next parallel one */
} fastnn_pace;

static fastnn_pace* fastnn_thread_pace(void) {
    static __thread fastnn_pace pace = {0, 0, 0.0, 0.0, 1, 0};
    return &pace;
}
