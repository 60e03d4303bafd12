/* reply.c - serialises the node's frames into one reusable buffer. Replies
 * to exec/call lead with the header the manager reads without parsing
 * (docs/protocol.md, "Manager ↔ node hop"), and their duration is written
 * as fixed point, not with printf's %.17g: both showed up in profiles. */
#include "node.h"

#include <stdlib.h>
#include <string.h>

static int put(bx_node *n, const char *p, size_t len)
{
    if (n->wlen + len > n->wcap) {
        size_t cap = n->wcap ? n->wcap : 4096;
        while (cap < n->wlen + len)
            cap *= 2;
        char *b = realloc(n->wbuf, cap);
        if (!b)
            return -1;
        n->wbuf = b;
        n->wcap = cap;
    }
    memcpy(n->wbuf + n->wlen, p, len);
    n->wlen += len;
    return 0;
}

#define PUTS(n, s) put((n), (s), sizeof(s) - 1)

static int put_dump(const char *p, size_t len, void *n)
{
    return put(n, p, len);
}

static int put_json(bx_node *n, json_t *v)
{
    return json_dump_callback(v, put_dump, n, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Unsigned decimal, no printf. */
static int put_u64(bx_node *n, unsigned long long v)
{
    char d[24], *p = d + sizeof d;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    return put(n, p, (size_t)(d + sizeof d - p));
}

static int put_id(bx_node *n, json_t *id)
{
    if (json_is_integer(id) && json_integer_value(id) >= 0)
        return put_u64(n, (unsigned long long)json_integer_value(id));
    return id ? put_json(n, id) : PUTS(n, "null");
}

static unsigned long long ms_to_us(double ms)
{
    return ms > 0 && ms < 1e15 ? (unsigned long long)(ms * 1e3 + 0.5) : 0;
}

/* Milliseconds with microsecond resolution: always a '.', so a JSON float. */
static int put_ms(bx_node *n, double ms)
{
    unsigned long long us = ms_to_us(ms);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10)};
    return put_u64(n, us / 1000) || put(n, frac, sizeof frac);
}

/* "result": the object built by run.c, then duration_ms and mem_bytes. */
static int put_result(bx_node *n, json_t *res)
{
    const char *key;
    json_t *v;
    int rc = PUTS(n, "{");
    json_object_foreach(res, key, v)
        rc = rc || PUTS(n, "\"") || put(n, key, strlen(key)) || PUTS(n, "\":") ||
             put_json(n, v) || PUTS(n, ",");
    return rc || PUTS(n, "\"duration_ms\":") || put_ms(n, n->hdr.ms) ||
           PUTS(n, ",\"mem_bytes\":") || put_u64(n, n->hdr.mem) || PUTS(n, "}");
}

/* The header: ["CODE" or "" for a result, duration in µs, heap bytes]. */
static int put_hdr(bx_node *n)
{
    const char *code = n->hdr.code == BX_OK ? "" : bx_err_code(n->hdr.code);
    return PUTS(n, ",\"hdr\":[\"") || put(n, code, strlen(code)) || PUTS(n, "\",") ||
           put_u64(n, ms_to_us(n->hdr.ms)) || PUTS(n, ",") || put_u64(n, n->hdr.mem) || PUTS(n, "]");
}

int reply_build(bx_node *n, json_t *msg, const char **buf, size_t *len)
{
    const char *key;
    json_t *v, *id = json_object_get(msg, "id");
    int rc = 0, first = 1;
    n->wlen = 0;
    if (id) {   /* a reply: the id first, where the manager looks for it */
        rc = PUTS(n, "{\"id\":") || put_id(n, id) || (n->hdr.on && put_hdr(n));
        first = 0;
    }
    json_object_foreach(msg, key, v) {
        if (id && strcmp(key, "id") == 0)
            continue;
        /* keys are the node's own literals: nothing to escape */
        rc = rc || put(n, first ? "{\"" : ",\"", 2) || put(n, key, strlen(key)) || PUTS(n, "\":");
        if (id && n->hdr.on && n->hdr.code == BX_OK && strcmp(key, "result") == 0 && json_is_object(v))
            rc = rc || put_result(n, v);
        else
            rc = rc || put_json(n, v);
        first = 0;
    }
    rc = rc || (first ? PUTS(n, "{}\n") : PUTS(n, "}\n"));
    n->hdr.on = 0;
    *buf = n->wbuf;
    *len = n->wlen;
    return rc ? -1 : 0;
}
