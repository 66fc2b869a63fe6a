#include "image_codecs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>

static void set_message(char *message, size_t size, const char *format, ...) {
    if (!message || size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
}

const char *aic_library_versions(void) {
    static char text[96];
    snprintf(text, sizeof text, "libpng %s, libjpeg %d", png_get_libpng_ver(NULL), JPEG_LIB_VERSION);
    return text;
}

void aic_free(void *pointer) { free(pointer); }

/* ---------------------------------------------------------------- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char text[JMSG_LENGTH_MAX];
} jpeg_error_state;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, state->text);
    longjmp(state->jump, 1);
}

/// Warnings (e.g. "Premature end of JPEG file") are remembered instead of printed: a truncated file
/// decodes to grey padding, which we refuse.
static void jpeg_message(j_common_ptr cinfo, int level) {
    jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->num_warnings == 0) (*cinfo->err->format_message)(cinfo, state->text);
        cinfo->err->num_warnings++;
    }
}

static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

/// Routes libjpeg's errors to our longjmp target and keeps its warnings (the caller owns the setjmp,
/// which must live in the frame that stays active while libjpeg runs).
static void jpeg_install_errors(struct jpeg_decompress_struct *cinfo, jpeg_error_state *err) {
    memset(cinfo, 0, sizeof *cinfo);
    cinfo->err = jpeg_std_error(&err->base);
    err->base.error_exit = jpeg_fail;
    err->base.emit_message = jpeg_message;
    err->base.output_message = jpeg_silent;
    err->text[0] = 0;
}

int aic_decode_jpeg(const uint8_t *data, size_t size, aic_raster *out, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_state err;
    uint8_t *volatile pixels = NULL;
    memset(out, 0, sizeof *out);
    jpeg_install_errors(&cinfo, &err);
    if (setjmp(err.jump)) {
        set_message(message, message_size, "corrupt JPEG: %s", err.text);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return AIC_ERROR;
    }
    jpeg_CreateDecompress(&cinfo, JPEG_LIB_VERSION, sizeof cinfo);
    jpeg_mem_src(&cinfo, (unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        set_message(message, message_size, "CMYK JPEG is not supported (convert it to RGB)");
        jpeg_destroy_decompress(&cinfo);
        return AIC_ERROR;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * 3;
    pixels = malloc(stride * cinfo.output_height);
    if (!pixels) {
        set_message(message, message_size, "out of memory for a %ux%u image", cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return AIC_ERROR;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (err.base.num_warnings > 0) {
        set_message(message, message_size, "corrupt or truncated JPEG: %s", err.text);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return AIC_ERROR;
    }
    out->pixels = pixels;
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->channels = 3;
    out->depth = 8;
    jpeg_destroy_decompress(&cinfo);
    return AIC_OK;
}

/* ----------------------------------------------------------------- PNG ---- */

typedef struct {
    const uint8_t *data;
    size_t size, offset;
    char text[200];
} png_source;

static void png_read_memory(png_structp png, png_bytep target, size_t length) {
    png_source *source = (png_source *)png_get_io_ptr(png);
    if (length > source->size - source->offset) png_error(png, "file is truncated");
    memcpy(target, source->data + source->offset, length);
    source->offset += length;
}

static void png_fail(png_structp png, png_const_charp text) {
    png_source *source = (png_source *)png_get_error_ptr(png);
    snprintf(source->text, sizeof source->text, "%s", text);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp text) { (void)png; (void)text; }

int aic_decode_png(const uint8_t *data, size_t size, int mode, aic_raster *out, char *message, size_t message_size) {
    png_source source = {data, size, 0, {0}};
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_message(message, message_size, "not a PNG file (bad signature)");
        return AIC_ERROR;
    }
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_warn);
    if (!png) { set_message(message, message_size, "libpng initialisation failed"); return AIC_ERROR; }
    info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        set_message(message, message_size, "corrupt PNG: %s", source.text[0] ? source.text : "unknown error");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(pixels);
        free(rows);
        return AIC_ERROR;
    }
    png_set_read_fn(png, &source, png_read_memory);
    png_set_user_limits(png, 1 << 15, 1 << 15); // refuse absurd sizes before allocating
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), bit_depth = png_get_bit_depth(png, info);
    int palette_entries = 0;
    if (mode == AIC_PNG_INDEX) {
        if (color == PNG_COLOR_TYPE_PALETTE) {
            png_colorp palette;
            png_get_PLTE(png, info, &palette, &palette_entries);
            if (bit_depth < 8) png_set_packing(png);
        } else if (color == PNG_COLOR_TYPE_GRAY) {
            if (bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
            if (bit_depth == 16) png_set_swap(png); // big-endian file → host order (little-endian)
        } else {
            set_message(message, message_size, "a mask must be single-channel (gray or palette), this PNG has %s",
                        (color & PNG_COLOR_MASK_COLOR) ? "colour channels" : "an alpha channel");
            png_destroy_read_struct(&png, &info, NULL);
            return AIC_ERROR;
        }
        if (png_get_valid(png, info, PNG_INFO_tRNS) && color == PNG_COLOR_TYPE_GRAY) { /* ignore transparency */ }
    } else {
        if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
        if (bit_depth < 8) png_set_expand(png);
        if (bit_depth == 16) png_set_scale_16(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
        png_set_strip_alpha(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    size_t stride = png_get_rowbytes(png, info);
    pixels = malloc(stride * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + stride * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->depth = depth;
    out->palette_entries = palette_entries;
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return AIC_OK;
}

typedef struct {
    uint8_t *data;
    size_t size, capacity;
    int failed;
} png_sink;

static void png_write_memory(png_structp png, png_bytep bytes, size_t length) {
    png_sink *sink = (png_sink *)png_get_io_ptr(png);
    if (sink->size + length > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity * 2 : 65536;
        while (capacity < sink->size + length) capacity *= 2;
        uint8_t *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

int aic_encode_png(const uint8_t *pixels, int width, int height, int channels, const uint8_t *palette,
                   int palette_entries, int fast, uint8_t **out_data, size_t *out_size, char *message,
                   size_t message_size) {
    png_source errors = {NULL, 0, 0, {0}};
    png_sink sink = {NULL, 0, 0, 0};
    png_structp png = NULL;
    png_infop info = NULL;
    *out_data = NULL;
    *out_size = 0;
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || (palette && channels != 1) ||
        (palette && (palette_entries < 1 || palette_entries > 256))) {
        set_message(message, message_size, "cannot encode a %dx%d PNG with %d channels and %d palette entries",
                    width, height, channels, palette ? palette_entries : 0);
        return AIC_ERROR;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &errors, png_fail, png_warn);
    if (!png) { set_message(message, message_size, "libpng initialisation failed"); return AIC_ERROR; }
    info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        set_message(message, message_size, "PNG encoding failed: %s", errors.text);
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(sink.data);
        return AIC_ERROR;
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_memory);
    png_set_compression_level(png, fast ? 1 : 6);
    int color = palette ? PNG_COLOR_TYPE_PALETTE : (channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color colors[256];
        for (int i = 0; i < palette_entries; i++) {
            colors[i].red = palette[3 * i];
            colors[i].green = palette[3 * i + 1];
            colors[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, colors, palette_entries);
    }
    png_write_info(png, info);
    size_t stride = (size_t)width * channels;
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + stride * y));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *out_data = sink.data;
    *out_size = sink.size;
    return AIC_OK;
}

/* --------------------------------------------------------------- probe ---- */

static int probe_jpeg(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_state err;
    jpeg_install_errors(&cinfo, &err);
    if (setjmp(err.jump)) {
        set_message(message, message_size, "corrupt JPEG: %s", err.text);
        jpeg_destroy_decompress(&cinfo);
        return AIC_ERROR;
    }
    jpeg_CreateDecompress(&cinfo, JPEG_LIB_VERSION, sizeof cinfo);
    jpeg_mem_src(&cinfo, (unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    int refused = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    // A header cut short makes libjpeg insert a fake end marker and warn; that file cannot decode.
    int truncated = err.base.num_warnings > 0;
    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    if (refused) {
        set_message(message, message_size, "CMYK JPEG is not supported (convert it to RGB)");
        return AIC_ERROR;
    }
    if (truncated) {
        set_message(message, message_size, "corrupt or truncated JPEG: %s", err.text);
        return AIC_ERROR;
    }
    return AIC_OK;
}

static int probe_png(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t message_size) {
    png_source source = {data, size, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_warn);
    png_infop info = NULL;
    if (!png) { set_message(message, message_size, "libpng initialisation failed"); return AIC_ERROR; }
    info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        set_message(message, message_size, "corrupt PNG: %s", source.text[0] ? source.text : "unknown error");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return AIC_ERROR;
    }
    png_set_read_fn(png, &source, png_read_memory);
    png_set_user_limits(png, 1 << 15, 1 << 15); // same limits as the decoder
    png_read_info(png, info);                    // signature, IHDR (with CRC) and chunks before IDAT
    *width = (int)png_get_image_width(png, info);
    *height = (int)png_get_image_height(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    return AIC_OK;
}

int aic_probe_image(const uint8_t *data, size_t size, int *width, int *height, char *message, size_t message_size) {
    *width = 0;
    *height = 0;
    if (size >= 8 && png_sig_cmp(data, 0, 8) == 0) return probe_png(data, size, width, height, message, message_size);
    if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8) return probe_jpeg(data, size, width, height, message, message_size);
    set_message(message, message_size, "not a JPEG or PNG file");
    return AIC_ERROR;
}
