#include "kernels.h"
#if defined(__linux__)
#include <malloc.h>
#endif

void ak_tune_allocator(void) {
#if defined(__linux__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
