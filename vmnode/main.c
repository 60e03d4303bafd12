/* main.c - bioxen-vmnode: one sandboxed Lua VM per process, spawned by the
 * manager as `bioxen-vmnode --fd 3 --parent PID`, or forked by the zygote
 * (`--zygote`, zygote.c), which then carries on here as an exec'd node.
 * Owns the node record and the request loop: read a frame, run its op (ops.c) or take it as a late
 * answer to a wait that ended, reply; exit 0 on EOF. */
#include "node.h"
#include "mailbox.h"
#include "netlib.h"
#include "nodeops.h"
#include "policy.h"
#include "procstat.h"
#include "stream.h"
#include "zygote.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

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
    else
        reply = ops_run(n, req, id, op);
    if (n->broken)
        rc = -1;    /* init or reset failed past repair: reply, then exit */
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

static int parse_args(int argc, char **argv, int *fd, long *parent, int *zygote)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--zygote") == 0)
            *zygote = 1;
        else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc)
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
    int fd = 3, zygote = 0, code;
    long parent = 0;
    if (parse_args(argc, argv, &fd, &parent, &zygote) < 0) {
        fprintf(stderr, "usage: bioxen-vmnode [--zygote] --fd N --parent PID\n");
        return 2;
    }
    if (parent > 0 && getppid() != (pid_t)parent)
        return 1;
    /* the zygote returns here only in a forked child: a node on fd 3 */
    if (zygote && !zygote_serve(fd, &code))
        return code;
    if (zygote)
        fd = 3;
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
        procstat_open();
        sandbox_prebuild(&node);
        rc = node_run(&node, err, sizeof err);
    }
    if (rc < 0)
        fprintf(stderr, "bioxen-vmnode[%d]: %s\n", (int)getpid(), err);
    node_free(&node);
    return rc < 0 ? 1 : 0;
}
