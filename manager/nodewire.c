/* nodewire.c - the hot path of the manager <-> node wire: writes a VM op to
 * a node without building a JSON tree, and reads the id and header off the
 * front of a node's reply so its remaining bytes pass to the client as they
 * are (docs/protocol.md, "Manager ↔ node hop"). Profiles showed the parse
 * and re-dump of every reply as the manager's biggest cost. Pure functions,
 * tested by tests/c/test_nodewire.c. */
#include "nodewire.h"

#include <string.h>

/* The request fields some node op reads. Only these cross: the node reads
 * nothing else, and a fixed key list needs no escaping. */
static const char *const node_fields[] = {"code", "chunkname", "fn", "args", "globals", "name",
                                          "expr", "stream", "filename", "context"};

static int add_dump(const char *p, size_t len, void *out)
{
    return evbuffer_add(out, p, len);
}

static int add_json(struct evbuffer *out, json_t *v)
{
    return json_dump_callback(v, add_dump, out, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int add_u64(struct evbuffer *out, uint64_t v)
{
    char d[24], *p = d + sizeof d;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    return evbuffer_add(out, p, (size_t)(d + sizeof d - p));
}

#define ADDS(out, s) evbuffer_add((out), (s), sizeof(s) - 1)

int nodewire_request(struct evbuffer *out, uint64_t id, const char *op, json_t *req,
                     const struct nodewire_run *run)
{
    int rc = ADDS(out, "{\"id\":") || add_u64(out, id) || ADDS(out, ",\"op\":\"") ||
             evbuffer_add(out, op, strlen(op)) || ADDS(out, "\"");
    if (run) {
        json_t *t = json_object_get(req, "timeout"), *il = json_object_get(req, "instruction_limit");
        rc = rc || ADDS(out, ",\"timeout\":") ||
             (t ? add_json(out, t) : evbuffer_add(out, run->timeout_text, strlen(run->timeout_text))) ||
             ADDS(out, ",\"instruction_limit\":") ||
             (il ? add_json(out, il) : add_u64(out, run->instruction_limit));
    }
    for (size_t i = 0; i < sizeof node_fields / sizeof node_fields[0]; i++) {
        json_t *v = json_object_get(req, node_fields[i]);
        if (v)
            rc = rc || ADDS(out, ",\"") || evbuffer_add(out, node_fields[i], strlen(node_fields[i])) ||
                 ADDS(out, "\":") || add_json(out, v);
    }
    return rc || ADDS(out, "}\n") ? -1 : 0;
}

/* Reads an unsigned decimal at *p; 0, or -1 if none or over 19 digits. */
static int read_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    *v = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 19)
        *v = *v * 10 + (uint64_t)(*(*p)++ - '0');
    return *p > s && (*p == end || **p < '0' || **p > '9') ? 0 : -1;
}

static int skip(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return -1;
    *p += n;
    return 0;
}

/* ,"hdr":["CODE",us,mem] */
static int read_hdr(const char **p, const char *end, struct nodewire_head *h)
{
    size_t n = 0;
    if (skip(p, end, ",\"hdr\":[\"") < 0)
        return -1;
    while (*p < end && n + 1 < sizeof h->code && ((**p >= 'A' && **p <= 'Z') || **p == '_'))
        h->code[n++] = *(*p)++;
    h->code[n] = 0;
    h->has_hdr = 1;
    return skip(p, end, "\",") < 0 || read_u64(p, end, &h->us) < 0 || skip(p, end, ",") < 0 ||
           read_u64(p, end, &h->mem) < 0 || skip(p, end, "]") < 0 ? -1 : 0;
}

int nodewire_head(const char *line, size_t len, struct nodewire_head *h)
{
    const char *p = line, *end = line + len;
    memset(h, 0, sizeof *h);
    if (skip(&p, end, "{\"id\":") < 0 || read_u64(&p, end, &h->id) < 0)
        return -1;
    if (p < end && *p == ',' && end - p > 6 && memcmp(p, ",\"hdr\":", 7) == 0 && read_hdr(&p, end, h) < 0)
        return -1;
    if (p == end || (*p != ',' && *p != '}'))
        return -1;
    h->rest = (size_t)(p - line);
    return 0;
}

size_t nodewire_id_text(json_t *id, char *buf, size_t cap)
{
    return id ? json_dumpb(id, buf, cap, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
}
