// CImageCodecs — the only place that calls libpng and libjpeg. Both report errors by longjmp, which
// must never cross a Swift frame, so every entry point here owns its setjmp and returns a status code
// plus a message instead. Decoders read from memory (the caller owns the file bytes).
#ifndef ADAROUTE_IMAGE_CODECS_H
#define ADAROUTE_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

/// A decoded raster: `height` rows of `width · channels` samples, each 1 byte (depth 8) or a
/// host-order uint16 (depth 16). Free `pixels` with aic_free.
typedef struct {
    void *pixels;
    int width, height, channels, depth;
    /// PNG palette images decoded as indices: the palette size (else 0).
    int palette_entries;
} aic_raster;

enum {
    AIC_OK = 0,
    AIC_ERROR = 1,       // corrupt, truncated or unsupported; message says why
};

/// How a PNG is turned into samples.
enum {
    AIC_PNG_COLOR = 0,   // 8-bit RGB: gray and palette expanded, alpha dropped, 16-bit scaled down
    AIC_PNG_INDEX = 1,   // single channel as stored: palette indices (not colours), gray 8 or 16 bit
};

/// Library versions linked into the binary, e.g. "libpng 1.6.39, libjpeg 62".
const char *aic_library_versions(void);

/// JPEG (baseline or progressive) → 8-bit RGB (grayscale expanded). CMYK/YCCK is refused.
int aic_decode_jpeg(const uint8_t *data, size_t size, aic_raster *out, char *message, size_t message_size);

/// PNG → samples as `mode` says. A colour PNG in AIC_PNG_INDEX mode is an error (masks are single-channel).
int aic_decode_png(const uint8_t *data, size_t size, int mode, aic_raster *out, char *message, size_t message_size);

/// 8-bit PNG from `channels` = 1 (gray, or palette indices when `palette` is given: `palette_entries`
/// RGB triples) or 3 (RGB). `fast` uses zlib level 1. On success *out_data (free with aic_free) holds the file.
int aic_encode_png(const uint8_t *pixels, int width, int height, int channels, const uint8_t *palette,
                   int palette_entries, int fast, uint8_t **out_data, size_t *out_size, char *message,
                   size_t message_size);

/// Width and height from the header alone (JPEG: jpeg_read_header; PNG: signature and IHDR via libpng),
/// without decoding pixels. Refuses what the decoders refuse at header level (not JPEG/PNG, CMYK JPEG,
/// corrupt header), so a header that probes cleanly only fails later if the pixel data is damaged.
int aic_probe_image(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t message_size);

void aic_free(void *pointer);

#endif
