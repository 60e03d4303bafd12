/* linebuf.c - pulls newline frames out of a bufferevent's input with the
 * FRAME_MAX rule, for client and node frames alike. Remembers how far it
 * has looked, so a 16 MiB frame arriving in small reads is scanned once,
 * not once per read. */
#include "manager.h"

int linebuf_next(struct evbuffer *in, size_t *scanned, size_t max,
                 const char **line, size_t *len)
{
    struct evbuffer_ptr start, p;
    size_t eol_len, avail = evbuffer_get_length(in);
    if (*scanned > avail)
        *scanned = 0;
    evbuffer_ptr_set(in, &start, *scanned, EVBUFFER_PTR_SET);
    p = evbuffer_search_eol(in, &start, &eol_len, EVBUFFER_EOL_LF);
    if (p.pos < 0) {
        *scanned = avail;
        return avail > max ? -1 : 0;
    }
    if ((size_t)p.pos > max)
        return -1;
    *scanned = 0;
    *line = (const char *)evbuffer_pullup(in, p.pos + 1);
    *len = p.pos;
    return *line ? 1 : -1;
}
