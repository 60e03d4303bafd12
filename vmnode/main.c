/* main.c - bioxen-vmnode: one sandboxed Lua VM per process, spawned by the
 * manager as `bioxen-vmnode --fd 3 --parent PID`. Owns the node record and
 * the request loop: read a frame, run it (exec.c), reply; exit 0 on EOF. */
#include "node.h"
#include "mailbox.h"
#include "netlib.h"
#include "policy.h"
#include "project.h"
#include "stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int do_init(bx_node *n, json_t *req, json_t *id, json_t **reply)
{
    char err[256];
    bx_limits lim;
    json_t *cbs = json_object_get(req, "callbacks"), *net = json_object_get(req, "networked");
    if (exec_parse_limits(json_object_get(req, "limits"), &lim, err, sizeof err) < 0) {
        *reply = proto_error_new(id, BX_E_BAD_REQUEST, "%s", err);
        return 0;
    }
    size_t i;
    json_t *c;
    if (cbs && !json_is_array(cbs))
        cbs = NULL, *reply = NULL;
    json_array_foreach(cbs, i, c) {
        if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > BX_NAME_MAX ||
            strlen(json_string_value(c)) != json_string_length(c)) {
            *reply = proto_error_new(id, BX_E_BAD_REQUEST, "callbacks must be a list of names");
            return 0;
        }
    }
    if (net && !json_is_boolean(net)) {
        *reply = proto_error_new(id, BX_E_BAD_REQUEST, "networked must be a boolean");
        return 0;
    }
    n->lim = lim;
    n->networked = json_is_true(net);
    n->callbacks = cbs ? json_incref(cbs) : json_array();
    netlib_configure(json_object_get(req, "allow_tcp"));
    policy_configure(n, json_object_get(req, "policy"));   /* policy hook */
    if (project_configure(json_object_get(req, "project"), err, sizeof err) < 0) {
        *reply = proto_error_new(id, BX_E_BAD_REQUEST, "%s", err);
        return 0;
    }
    if (limits_apply_rlimits(&lim, n->networked, err, sizeof err) < 0) {
        *reply = proto_error_new(id, BX_E_INTERNAL, "%s", err);
        return -1;
    }
    if (sandbox_open(n) < 0) {
        *reply = proto_error_new(id, BX_E_INTERNAL, "cannot create the Lua state");
        return -1;
    }
    mailbox_init(json_string_value(json_object_get(req, "name")));
    json_t *hp = json_object_get(req, "host_pid");
    n->host_pid = json_is_integer(hp) ? (int)json_integer_value(hp) : (int)getpid();
    exec_open_statm();
    enum bx_err e = isolate_apply(n, req, err, sizeof err);
    if (e != BX_OK) {
        *reply = proto_error_new(id, e, "%s", err);
        return -1;
    }
    n->initialised = 1;
    *reply = proto_reply_new(id, json_pack("{s:i}", "pid", n->host_pid));
    return 0;
}

/* Handles one frame; returns -1 when the node cannot go on. */
static int handle_frame(bx_node *n, const char *line, size_t len)
{
    char perr[256];
    json_t *reply = NULL;
    int rc = 0;
    n->hdr.on = 0;
    json_t *req = proto_parse(line, len, perr, sizeof perr);
    if (!req)
        return link_send(n, proto_error_new(NULL, BX_E_BAD_REQUEST, "%s", perr));
    json_t *id = json_object_get(req, "id");
    const char *op = json_string_value(json_object_get(req, "op"));
    if (id && !json_is_integer(id) && !json_is_string(id))
        id = NULL;
    if (op && strcmp(op, "cb_result") == 0)
        ; /* a late answer to a callback that was abandoned: no reply */
    else if (stream_frame(req))
        ; /* an ack of a stream that has ended: dropped */
    else if (mailbox_frame(req))
        ; /* an ack or pulled mail that arrived after its wait ended */
    else if (policy_frame(req))
        ; /* policy hook: an fs/require answer whose wait a timeout ended */
    else if (!id || !op)
        reply = proto_error_new(id, BX_E_BAD_REQUEST, "a request needs an integer or string \"id\" and a string \"op\"");
    else if (strcmp(op, "init") == 0)
        rc = n->initialised ? (reply = proto_error_new(id, BX_E_BAD_REQUEST, "already initialised"), 0)
                            : do_init(n, req, id, &reply);
    else if (!n->initialised)
        reply = proto_error_new(id, BX_E_BAD_REQUEST, "the first request must be init");
    else {
        reply = exec_request(n, req, id, op);
        if (!n->L)
            rc = -1; /* reset could not rebuild the state */
    }
    if (reply && link_send(n, reply) < 0)
        rc = -1;
    json_decref(req);
    return rc;
}

static int node_run(bx_node *n, char *err, size_t errlen)
{
    for (;;) {
        bx_queued *q = link_queue_pop(n);
        if (q) {
            int rc = handle_frame(n, q->line, q->len);
            free(q);
            if (rc < 0)
                return snprintf(err, errlen, "cannot serve requests any more"), -1;
            continue;
        }
        char *line;
        size_t len;
        int r = n->networked ? netlib_idle_read(n, &line, &len) : link_read(n, &line, &len, 0);
        if (r == 0)
            return 0;
        if (r < 0) {
            link_send(n, proto_error_new(NULL, BX_E_FRAME_TOO_LARGE, "frame too large or unreadable"));
            snprintf(err, errlen, "link broken: %s", r == -1 && errno ? strerror(errno) : "frame too large");
            return -1;
        }
        if (handle_frame(n, line, len) < 0)
            return snprintf(err, errlen, "cannot serve requests any more"), -1;
    }
}

static void node_free(bx_node *n)
{
    sandbox_close(n);
    bx_queued *q;
    while ((q = link_queue_pop(n)))
        free(q);
    json_decref(n->callbacks);
    json_decref(n->cb_msg);
    free(n->out);
    free(n->wbuf);
    fb_free(&n->fb);
}

static int parse_args(int argc, char **argv, int *fd, long *parent)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc)
            *fd = atoi(argv[++i]);
        else if (strcmp(argv[i], "--parent") == 0 && i + 1 < argc)
            *parent = atol(argv[++i]);
        else
            return -1;
    }
    return *fd >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* die with the manager; then close the race where it died before this */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = 3;
    long parent = 0;
    if (parse_args(argc, argv, &fd, &parent) < 0) {
        fprintf(stderr, "usage: bioxen-vmnode --fd N --parent PID\n");
        return 2;
    }
    if (parent > 0 && getppid() != (pid_t)parent)
        return 1;
    static bx_node node;
    char err[256] = "";
    node.fd = fd;
    fb_init(&node.fb, 0);
    int rc = limits_install_signals();
    if (rc < 0) {
        snprintf(err, sizeof err, "sigaction: %s", strerror(errno));
    } else {
        /* Work that does not depend on the init frame, done while a spare
         * node waits for it: Jansson's hash seed (it reads /dev/urandom),
         * the statm fd, the Lua base libraries. */
        json_object_seed(0);
        exec_open_statm();
        sandbox_prebuild(&node);
        rc = node_run(&node, err, sizeof err);
    }
    if (rc < 0)
        fprintf(stderr, "bioxen-vmnode[%d]: %s\n", (int)getpid(), err);
    node_free(&node);
    return rc < 0 ? 1 : 0;
}
