/* mailcheck.c - pure checks of the mailbox fields (mailcheck.h) and the
 * mailbox ops' entries of the op table. Lenient where the protocol is: a
 * bad timeout means "none" and a bad max the default, as they always did;
 * only sizes and names are refused. */
#include "mailcheck.h"
#include "ops.h"

#include <stdio.h>

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
