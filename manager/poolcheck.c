/* poolcheck.c - pure checks for the pool ops (pool_config, run; pool_warmup
 * takes nothing), kept apart from validate.c so the pool's parsing is one
 * file. Named in ops.def, so the router and the request fuzzer run them. */
#include "ops.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

static int pool_int(json_t *req, const char *key, json_int_t dflt, json_int_t *out,
                    char *err, size_t n)
{
    json_t *v = json_object_get(req, key);
    *out = v ? (json_is_integer(v) ? json_integer_value(v) : -1) : dflt;
    if (*out < 0 || *out > POOL_MAX_VMS) {
        snprintf(err, n, "'%s' must be an integer from 0 to %d", key, POOL_MAX_VMS);
        return -1;
    }
    return 0;
}

enum bx_err req_check_pool_config(json_t *req, struct pool_cfg *cfg, char *err, size_t n)
{
    json_int_t mn, mx;
    json_t *it = json_object_get(req, "idle_timeout"), *lim = json_object_get(req, "limits");
    cfg->init = NULL;
    if (pool_int(req, "min", 0, &mn, err, n) < 0 || pool_int(req, "max", 8, &mx, err, n) < 0)
        return BX_E_BAD_REQUEST;
    if (mx < 1 || mn > mx) {
        snprintf(err, n, "pool 'max' must be at least 1 and at least 'min'");
        return BX_E_BAD_REQUEST;
    }
    if (it && (!json_is_number(it) || json_number_value(it) < 0 || json_number_value(it) > 1e9)) {
        snprintf(err, n, "'idle_timeout' must be a number of seconds from 0 to 1e9");
        return BX_E_BAD_REQUEST;
    }
    /* The pool's VMs are built like a create of the same limits, so create's
     * checks apply; a crashed pool VM comes back (restart on-crash). */
    json_t *create = json_pack("{s:s, s:s}", "name", "pool", "restart", "on-crash");
    if (create && lim)
        json_object_set(create, "limits", lim);
    enum bx_err e = create ? req_check_create(create, &cfg->init, err, n) : BX_E_INTERNAL;
    json_decref(create);
    if (e != BX_OK)
        return e;
    cfg->min = (size_t)mn;
    cfg->max = (size_t)mx;
    cfg->idle_timeout = it ? json_number_value(it) : 30.0;
    return BX_OK;
}

enum bx_err req_check_run(json_t *req, char *err, size_t n)
{
    json_t *g = json_object_get(req, "globals"), *cn = json_object_get(req, "chunkname");
    if (g && !json_is_object(g)) {
        snprintf(err, n, "'globals' must be an object");
        return BX_E_BAD_REQUEST;
    }
    if (cn && !json_is_string(cn)) {
        snprintf(err, n, "'chunkname' must be a string");
        return BX_E_BAD_REQUEST;
    }
    /* a forwarded run's origin pool_config (spread.c): parsed in full by
     * the target's pool only when it differs from the one it has */
    json_t *pool = json_object_get(req, "pool");
    if (pool && !json_is_object(pool)) {
        snprintf(err, n, "'pool' must be an object");
        return BX_E_BAD_REQUEST;
    }
    /* a pool VM has no name a client could ack a stream with */
    if (json_object_get(req, "stream")) {
        snprintf(err, n, "'stream' is for exec on a named VM, not for run");
        return BX_E_BAD_REQUEST;
    }
    return req_check_run_fields(req, 1, err, n);
}

enum bx_err opcheck_run(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    return req_check_run(req, err, n);
}

enum bx_err opcheck_pool_config(json_t *req, struct op_args *a, char *err, size_t n)
{
    return req_check_pool_config(req, &a->pool, err, n);
}
