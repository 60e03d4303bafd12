/* init.c - the init op, a node's first request: reads the VM's limits,
 * callbacks, network grants, policy and project, then builds its Lua state
 * and applies isolation, the last step (after it the node opens nothing).
 * A bad field is a BAD_REQUEST the client may retry; a failure past the
 * checks leaves the node broken. */
#include "nodeops.h"

#include <string.h>
#include <unistd.h>

#include "mailbox.h"
#include "netlib.h"
#include "policy.h"
#include "procstat.h"
#include "project.h"

/* True when cbs is absent, not an array (ignored), or a list of names. */
static int callbacks_valid(json_t *cbs)
{
    size_t i;
    json_t *c;
    json_array_foreach(cbs, i, c) {
        if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > BX_NAME_MAX ||
            strlen(json_string_value(c)) != json_string_length(c))
            return 0;
    }
    return 1;
}

/* Reads and keeps the configuration; NULL, or a BAD_REQUEST reply. */
static json_t *init_configure(bx_node *n, json_t *req, json_t *id)
{
    char err[256];
    bx_limits lim;
    json_t *cbs = json_object_get(req, "callbacks"), *net = json_object_get(req, "networked");
    if (limits_parse(json_object_get(req, "limits"), &lim, err, sizeof err) < 0)
        return proto_error_new(id, BX_E_BAD_REQUEST, "%s", err);
    if (cbs && !json_is_array(cbs))
        cbs = NULL;
    if (!callbacks_valid(cbs))
        return proto_error_new(id, BX_E_BAD_REQUEST, "callbacks must be a list of names");
    if (net && !json_is_boolean(net))
        return proto_error_new(id, BX_E_BAD_REQUEST, "networked must be a boolean");
    n->lim = lim;
    n->networked = json_is_true(net);
    n->callbacks = cbs ? json_incref(cbs) : json_array();
    netlib_configure(json_object_get(req, "allow_tcp"));
    policy_configure(n, json_object_get(req, "policy"));
    if (project_configure(json_object_get(req, "project"), err, sizeof err) < 0)
        return proto_error_new(id, BX_E_BAD_REQUEST, "%s", err);
    return NULL;
}

/* The steps that cannot be undone: a failure leaves the node broken. */
static json_t *init_build(bx_node *n, json_t *req, json_t *id)
{
    char err[256];
    n->broken = 1;
    if (limits_apply_rlimits(&n->lim, n->networked, err, sizeof err) < 0)
        return proto_error_new(id, BX_E_INTERNAL, "%s", err);
    if (sandbox_open(n) < 0)
        return proto_error_new(id, BX_E_INTERNAL, "cannot create the Lua state");
    mailbox_init(json_string_value(json_object_get(req, "name")));
    json_t *hp = json_object_get(req, "host_pid");
    n->host_pid = json_is_integer(hp) ? (int)json_integer_value(hp) : (int)getpid();
    procstat_open();
    enum bx_err e = isolate_apply(n, req, err, sizeof err);
    if (e != BX_OK)
        return proto_error_new(id, e, "%s", err);
    n->broken = 0;
    n->initialised = 1;
    return proto_reply_new(id, json_pack("{s:i}", "pid", n->host_pid));
}

json_t *init_op(bx_node *n, json_t *req, json_t *id)
{
    json_t *reply = init_configure(n, req, id);
    return reply ? reply : init_build(n, req, id);
}
