/* fwdcheck.c - envelopes of forwarding, checked without state (fwdcheck.h).
 * A cluster member is trusted like a manager (docs/security.md), but what
 * it sends is still parsed as carefully as a socket line: a bad envelope
 * is refused here, and what it carries is checked by the op table. */
#include "fwdcheck.h"

#include <stdio.h>
#include <string.h>

int fwdcheck_host(const char *h)
{
    size_t len = h ? strlen(h) : 0;
    return len >= 1 && len <= FWD_HOST_MAX &&
           strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:-") == len;
}

static int bad(char *err, size_t n, const char *what)
{
    snprintf(err, n, "malformed envelope: %s", what);
    return -1;
}

/* from and client, which every envelope but list's has. */
static int head(json_t *msg, struct fwd_env *e, char *err, size_t n)
{
    memset(e, 0, sizeof *e);
    if (!json_is_object(msg))
        return bad(err, n, "not a JSON object");
    e->from = json_string_value(json_object_get(msg, "from"));
    if (!fwdcheck_host(e->from))
        return bad(err, n, "'from' is not a host name");
    json_t *c = json_object_get(msg, "client");
    if (!json_is_integer(c) || json_integer_value(c) <= 0)
        return bad(err, n, "'client' is not a client id");
    e->client = (uint64_t)json_integer_value(c);
    return 0;
}

static int who(json_t *msg, struct fwd_env *e, char *err, size_t n)
{
    json_t *admin = json_object_get(msg, "admin");
    e->identity = json_string_value(json_object_get(msg, "identity"));
    if (!e->identity || !*e->identity || strlen(e->identity) >= FWD_IDENT_MAX)
        return bad(err, n, "'identity' is not an identity");
    if (!json_is_boolean(admin))
        return bad(err, n, "'admin' is not a boolean");
    e->admin = json_is_true(admin);
    return 0;
}

int fwdcheck_req(json_t *msg, struct fwd_env *e, char *err, size_t n)
{
    if (head(msg, e, err, n) < 0 || who(msg, e, err, n) < 0)
        return -1;
    e->body = json_object_get(msg, "req");
    return json_is_object(e->body) ? 0 : bad(err, n, "'req' is not an object");
}

int fwdcheck_out(json_t *msg, struct fwd_env *e, char *err, size_t n)
{
    if (head(msg, e, err, n) < 0)
        return -1;
    e->body = json_object_get(msg, "frame");
    return json_is_object(e->body) ? 0 : bad(err, n, "'frame' is not an object");
}

int fwdcheck_bye(json_t *msg, struct fwd_env *e, char *err, size_t n)
{
    return head(msg, e, err, n);
}

int fwdcheck_list(json_t *msg, struct fwd_env *e, char *err, size_t n)
{
    memset(e, 0, sizeof *e);
    if (!json_is_object(msg))
        return bad(err, n, "not a JSON object");
    e->from = json_string_value(json_object_get(msg, "from"));
    if (!fwdcheck_host(e->from))
        return bad(err, n, "'from' is not a host name");
    return who(msg, e, err, n);
}
