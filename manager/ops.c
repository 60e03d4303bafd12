/* ops.c - the pure op table built from ops.def (name, check, flags), its
 * lookup, and the check of ops that take no arguments. No handler is
 * referenced here, so the fuzzers link the table the router walks. */
#include "ops.h"

#include <stdio.h>
#include <string.h>

const struct op_def op_table[OP_COUNT] = {
#define OP(NAME, CHECK, HANDLER, FLAGS, FIELDS) {#NAME, CHECK, FLAGS, FIELDS},
#include "ops.def"
#undef OP
};

/* A linear scan of ~30 short names: no slower than the if-chain it
 * replaced, and nothing to keep in step with the table. */
const struct op_def *op_lookup(const char *name)
{
    for (size_t i = 0; name && i < OP_COUNT; i++)
        if (strcmp(op_table[i].name, name) == 0)
            return &op_table[i];
    return NULL;
}

/* key is one of the space-separated words of list. */
static int field_listed(const char *list, const char *key)
{
    size_t len = strlen(key);
    for (const char *p = list; *p;) {
        size_t w = strcspn(p, " ");
        if (w == len && memcmp(p, key, len) == 0)
            return 1;
        p += w;
        p += strspn(p, " ");
    }
    return 0;
}

/* A limit given where the op takes none of its own: say where it goes. */
static const char *field_hint(const struct op_def *d, const char *key)
{
    static const char *const limits[] = {"memory_limit", "instruction_limit", "timeout",
                                         "cpu_limit", "max_output"};
    if (!field_listed(d->fields, "limits"))
        return "";
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (strcmp(key, limits[i]) == 0)
            return " (limits go inside \"limits\")";
    return "";
}

enum bx_err op_check_fields(const struct op_def *d, json_t *req, char *err, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0 || field_listed(d->fields, key))
            continue;
        snprintf(err, n, "unknown field '%.64s' for op '%s'%s", key, d->name, field_hint(d, key));
        return BX_E_BAD_REQUEST;
    }
    return BX_OK;
}

void op_args_clear(struct op_args *a)
{
    json_decref(a->init);
    json_decref(a->policy);
    json_decref(a->pool.init);
    a->init = a->policy = a->pool.init = NULL;
}

enum bx_err opcheck_metrics_events(json_t *req, struct op_args *a, char *err, size_t n)
{
    json_t *on = json_object_get(req, "on");
    (void)a;
    if (on && !json_is_boolean(on)) {
        snprintf(err, n, "'on' must be a boolean");
        return BX_E_BAD_REQUEST;
    }
    return BX_OK;
}

enum bx_err opcheck_none(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)req; (void)a; (void)err; (void)n;
    return BX_OK;
}
