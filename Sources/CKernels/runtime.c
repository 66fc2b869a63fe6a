#include "kernels.h"
#if defined(__linux__)
#include <malloc.h>
#endif

// Thresholds at their maximum (INT_MAX): a 1.26 GB output (150 classes, 512², batch 8) was mmapped and
// page-faulted in on every inference step, ~30 % of the step; from the heap it is reused.
void ak_tune_allocator(void) {
#if defined(__linux__)
    mallopt(M_MMAP_THRESHOLD, 0x7fffffff);
    mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#endif
}
