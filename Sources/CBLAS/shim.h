// OpenBLAS's CBLAS interface (Debian: /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h).
#include <cblas.h>
