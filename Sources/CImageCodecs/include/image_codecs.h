// CImageCodecs — the only place that calls libpng and libjpeg. Both report errors by longjmp,
// which must never cross a Swift frame, so every entry point here owns its setjmp and returns a
// status code plus a message instead.
#ifndef ADAROUTE_IMAGE_CODECS_H
#define ADAROUTE_IMAGE_CODECS_H

/// Library versions linked into the binary, e.g. "libpng 1.6.39, libjpeg 62".
const char *aic_library_versions(void);

#endif
