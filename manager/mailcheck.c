/* mailcheck.c - pure checks of the mailbox fields (mailcheck.h) and the
 * mailbox ops' entries of the op table. Lenient where the protocol is: a
 * bad timeout means "none" and a bad max the default, as they always did;
 * only sizes and names are refused. */
#include "mailcheck.h"
#include "ops.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

long long mailcheck_size(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > MAILBOX_SIZE_MAX)
        return -1;
    return json_integer_value(v);
}

double mailcheck_timeout(json_t *obj)
{
    json_t *t = json_object_get(obj, "timeout");
    return json_is_number(t) && json_number_value(t) >= 0 ? json_number_value(t) : -1;
}

size_t mailcheck_max(json_t *obj)
{
    json_t *v = json_object_get(obj, "max");
    json_int_t m = json_is_integer(v) ? json_integer_value(v) : MAILBOX_PULL_DEFAULT;
    return m < 1 ? 1 : m > MAILBOX_PULL_MAX ? MAILBOX_PULL_MAX : (size_t)m;
}

enum bx_err mailcheck_create(json_t *req, char *err, size_t n)
{
    if (mailcheck_size(req, "mailbox_size") < 0 || mailcheck_size(req, "outbox_size") < 0) {
        snprintf(err, n, "'mailbox_size' and 'outbox_size' must be integers from 1 to %d",
                 MAILBOX_SIZE_MAX);
        return BX_E_BAD_REQUEST;
    }
    return BX_OK;
}

enum bx_err opcheck_mailbox_open(json_t *req, struct op_args *a, char *err, size_t n)
{
    const char *name = json_string_value(json_object_get(req, "name"));
    long long size = mailcheck_size(req, "size");
    if (!name || !proto_valid_name(name) || size < 0) {
        snprintf(err, n, "'name' must be a valid name and 'size' an integer from 1 to %d",
                 MAILBOX_SIZE_MAX);
        return BX_E_BAD_REQUEST;
    }
    a->count = (size_t)size;
    return BX_OK;
}

/* Who may send as "from", and whether "to" exists, are the mailbox's own
 * questions (mailbox.c); here only the timeout is read. */
enum bx_err opcheck_mail_send(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)err; (void)n;
    a->timeout = mailcheck_timeout(req);
    return BX_OK;
}

/* mail_recv and outbox_recv. */
enum bx_err opcheck_mail_recv(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)err; (void)n;
    a->count = mailcheck_max(req);
    a->timeout = mailcheck_timeout(req);
    return BX_OK;
}

/* ---- what arrives from other hosts (mailremote.c) ---- */

static int host_ok(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (; *h; h++)
        if (!isalnum((unsigned char)*h) && *h != '_' && *h != '-' && *h != ':')
            return 0;
    return 1;
}

const char *mailcheck_batch(json_t *msg, const char *hkey, const char *akey, json_t **items)
{
    const char *host = json_string_value(json_object_get(msg, hkey));
    *items = json_object_get(msg, akey);
    return host_ok(host) && json_is_array(*items) ? host : NULL;
}

static long long seq_of(json_t *item)
{
    json_t *s = json_array_get(item, 0);
    return json_is_integer(s) && json_integer_value(s) >= 0 ? json_integer_value(s) : -1;
}

int mailcheck_mail(json_t *item, struct mailcheck_mail *m)
{
    memset(m, 0, sizeof *m);
    m->seq = seq_of(item);
    json_t *t = json_array_get(item, 4), *b = json_array_get(item, 5);
    m->from = json_string_value(json_array_get(item, 1));
    m->to = json_string_value(json_array_get(item, 2));
    m->value = json_array_get(item, 3);
    if (m->seq < 0 || json_array_size(item) != 6 || !m->from || strlen(m->from) > BX_NAME_MAX + 1 ||
        !m->to || !proto_valid_name(m->to) || !json_is_number(t) || !json_is_integer(b))
        return -1;
    m->timeout = json_number_value(t) >= 0 ? json_number_value(t) : -1;
    json_int_t n = json_integer_value(b);
    m->bytes = n < 1 ? 1 : n > (1 << 30) ? (size_t)1 << 30 : (size_t)n;
    return 0;
}

int mailcheck_ack(json_t *item, long long *seq, const char **code, const char **message)
{
    size_t n = json_array_size(item);
    *seq = seq_of(item);
    *code = n >= 2 ? json_string_value(json_array_get(item, 1)) : NULL;
    *message = n >= 3 ? json_string_value(json_array_get(item, 2)) : NULL;
    if (*seq < 0 || n < 1 || n > 3 || (n >= 2 && !*code) || (n == 3 && !*message))
        return -1;
    if (n == 2 && strcmp(*code, "PARKED") != 0)
        return -1;
    return 0;
}

/* ---- the node's own mail and post frames, without the generic parse ------- */

/* Matches lit at *p (advancing it) within end. */
static int eat(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* A non-negative JSON integer of at most 18 digits (no overflow), no
 * leading zero: the K the node counts up. */
static int eat_k(const char **p, const char *end, long long *k)
{
    const char *s = *p;
    long long v = 0;
    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 18)
        v = v * 10 + (*(*p)++ - '0');
    if (*p == s || (**p >= '0' && **p <= '9') || (s[0] == '0' && *p - s > 1))
        return 0;
    *k = v;
    return 1;
}

/* "NAME" of name characters only (nothing escaped), into to. */
static int eat_name(const char **p, const char *end, char *to)
{
    size_t n = 0;
    if (!eat(p, end, "\""))
        return 0;
    /* each byte a name character (a NUL or an escape would end or change
     * the name the generic parse reads) */
    while (*p < end && **p != '"' && n < BX_NAME_MAX) {
        to[n] = *(*p)++;
        to[n + 1] = '\0';
        if (!proto_valid_name(to + n))
            return 0;
        n++;
    }
    to[n] = '\0';
    return eat(p, end, "\"") && proto_valid_name(to);
}

/* {"mail_pull":K,"max":N[,"timeout":T]} after its K: the max, and the
 * timeout read as mailcheck_max and mailcheck_timeout read them. */
static int eat_pull(const char *p, const char *end, struct mailcheck_fast *f)
{
    long long max;
    json_error_t jerr;
    if (!eat(&p, end, ",\"max\":") || !eat_k(&p, end, &max))
        return 0;
    f->max = max < 1 ? 1 : max > MAILBOX_PULL_MAX ? MAILBOX_PULL_MAX : (size_t)max;
    f->timeout = -1;
    if (p == end)
        return 1;
    if (!eat(&p, end, ",\"timeout\":"))
        return 0;
    json_t *t = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, &jerr);
    if (!t)
        return 0;
    if (json_is_number(t) && json_number_value(t) >= 0)
        f->timeout = json_number_value(t);
    json_decref(t);
    return 1;
}

int mailcheck_node_fast(const char *line, size_t len, struct mailcheck_fast *f)
{
    const char *p = line, *end = line + len;
    json_error_t jerr;
    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    if (end - p < 2 || end[-1] != '}')
        return 0;
    end--;      /* the object's own closing brace: V ends before it */
    memset(f, 0, sizeof *f);
    if (eat(&p, end, "{\"mail\":")) {
        f->kind = MAILFAST_MAIL;
        if (!eat_k(&p, end, &f->k) || !eat(&p, end, ",\"to\":") || !eat_name(&p, end, f->to))
            return 0;
    } else if (eat(&p, end, "{\"post\":")) {
        f->kind = MAILFAST_POST;
        if (!eat_k(&p, end, &f->k))
            return 0;
    } else if (eat(&p, end, "{\"mail_pull\":")) {
        f->kind = MAILFAST_PULL;
        return eat_k(&p, end, &f->k) && eat_pull(p, end, f);
    } else {
        return 0;
    }
    if (!eat(&p, end, ",\"value\":"))
        return 0;
    /* exactly one value up to the brace: json_loadb refuses anything after it */
    f->value = json_loadb(p, (size_t)(end - p),
                          JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    return f->value ? 1 : 0;
}
