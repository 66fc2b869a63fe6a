#include "image_codecs.h"

#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
#include <png.h>

const char *aic_library_versions(void) {
    static char text[96];
    snprintf(text, sizeof text, "libpng %s, libjpeg %d", png_get_libpng_ver(NULL), JPEG_LIB_VERSION);
    return text;
}
