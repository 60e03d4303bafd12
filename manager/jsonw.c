/* jsonw.c - JSON text written by hand for the hottest frames, where
 * jansson's dump (a callback per token, snprintf per number: ~9k
 * instructions for {"mail_items":8,"items":[["vm1",1]]}) costs more than the
 * rest of a message's way through the manager. Integers and plain strings
 * are written here; every other value goes through json_dumpb, so the text
 * is always what jansson would accept back. */
#include "jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string that needs no escape: printable ASCII without '"' or '\\'. */
static int plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

int jsonw_value(struct evbuffer *out, const json_t *v)
{
    char buf[512];
    if (json_is_integer(v)) {
        int n = snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return evbuffer_add(out, buf, (size_t)n);
    }
    if (json_is_string(v) && plain(json_string_value(v), json_string_length(v))) {
        return evbuffer_add(out, "\"", 1) || evbuffer_add(out, json_string_value(v), json_string_length(v)) ||
               evbuffer_add(out, "\"", 1);
    }
    size_t n = json_dumpb(v, buf, sizeof buf, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0)
        return -1;
    if (n <= sizeof buf)
        return evbuffer_add(out, buf, n);
    char *big = malloc(n);
    int rc = !big || json_dumpb(v, big, n, JSON_COMPACT | JSON_ENCODE_ANY) != n ? -1 : evbuffer_add(out, big, n);
    free(big);
    return rc;
}

int jsonw_mail_items(struct evbuffer *out, const json_t *k, const json_t *items)
{
    size_t i;
    json_t *it;
    int rc = evbuffer_add(out, "{\"mail_items\":", 14) || jsonw_value(out, k) ||
             evbuffer_add(out, ",\"items\":[", 10);
    json_array_foreach(items, i, it) {
        rc = rc || evbuffer_add(out, i ? ",[" : "[", i ? 2 : 1) ||
             jsonw_value(out, json_array_get(it, 0)) || evbuffer_add(out, ",", 1) ||
             jsonw_value(out, json_array_get(it, 1)) || evbuffer_add(out, "]", 1);
    }
    return rc || evbuffer_add(out, "]}\n", 3) ? -1 : 0;
}
