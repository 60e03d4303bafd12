/* fuzz_frame.c - libFuzzer target for net/frame.c: arbitrary bytes, split at
 * arbitrary points, must reassemble into frames without overruns. The first
 * byte picks the frame limit and the chunk size. */
#include "frame.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bx_framebuf fb;
    fb_init(&fb, 1 + (data[0] & 0x3f));
    size_t chunk = 1 + (data[0] >> 6) * 7;
    const char *p = (const char *)data + 1;
    size_t left = size - 1;
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        if (fb_append(&fb, p, n) < 0)
            break;
        p += n;
        left -= n;
        char *line;
        size_t len;
        int r;
        while ((r = fb_next(&fb, &line, &len)) == 1) {
            if (memchr(line, '\n', len) || line[len] != '\0' || len > fb.max)
                __builtin_trap();
        }
        if (r < 0)
            break;   /* stream broken: a real reader closes here */
    }
    fb_free(&fb);
    return 0;
}
