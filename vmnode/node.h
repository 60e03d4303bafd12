/* node.h - the one record of a bioxen-vmnode process, and the API of the
 * modules every other one uses: limits, sandbox, callbacks, the link to the
 * manager (fd 3) and the frame writer. A node runs one Lua state for one VM,
 * single-threaded; main.c owns the record. The rest have their own headers
 * (ops.h: the op table and its handlers). */
#ifndef BX_NODE_H
#define BX_NODE_H

#include <jansson.h>
#include <lua.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>

#include "frame.h"
#include "proto.h"

/* BX_ASAN: an AddressSanitizer build (gcc or clang), which needs a larger
 * address space (limits.c) and a few more system calls (seccomp.c). */
#if defined(__SANITIZE_ADDRESS__)
#define BX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BX_ASAN 1
#endif
#endif

#define BX_OUTPUT_DEFAULT ((size_t)1 << 20)
#define BX_ERRTEXT_MAX ((size_t)64 << 10)

typedef struct bx_limits {
    size_t memory_limit;       /* bytes of Lua heap; 0 = unlimited */
    long long instruction_limit; /* per request; 0 = unlimited */
    double timeout;            /* seconds per request; 0 = unlimited */
    long long cpu_limit;       /* seconds of CPU for the process; 0 = none */
    size_t max_output;         /* bytes of print output per request */
} bx_limits;

/* A frame read while a callback waited; replayed in order afterwards. */
typedef struct bx_queued {
    struct bx_queued *next;
    size_t len;
    char line[];
} bx_queued;

/* What an exec/call reply tells the manager up front (reply.c, set by run.c). */
typedef struct bx_hdr {
    int on;                     /* the next reply carries the header */
    enum bx_err code;           /* BX_OK for a result */
    double ms;                  /* run time (results only) */
    size_t mem;                 /* heap bytes after the run (results only) */
} bx_hdr;

typedef struct bx_node {
    lua_State *L;
    bx_limits lim;
    json_t *callbacks;          /* array of names, owned */
    int networked;
    int full_isolation;         /* seccomp-locked (isolate.c) */
    int initialised;
    int broken;                 /* init or reset failed: exit after the reply */
    int host_pid;               /* our pid as the manager sees it (we may be pid 1) */

    /* counting allocator (limits.c) */
    size_t mem;                 /* live bytes of Lua heap */
    int mem_refused;            /* a growth was refused this request */
    int mem_unlimited;          /* while building the state */

    /* per-request metering (limits.c) */
    long long req_instr;        /* instruction budget of this request */
    long long instr_left;       /* what is left of it */
    double req_timeout;         /* wall timeout of this request */
    int instr_tripped;          /* budget spent: every instruction now errors */
    int hook_budget;            /* limits_arm_budget's hook: it trips when it fires */

    /* print capture (sandbox.c) */
    char *out;
    size_t out_len, out_cap;
    int out_truncated;

    /* the link to the manager (link.c) */
    int fd;
    bx_framebuf fb;
    bx_queued *q_head, *q_tail;
    long long cb_next;          /* id of the next callback */
    json_t *cb_msg;             /* last cb_result, freed by the next one or
                                   at the end of the request (a Lua error
                                   may unwind past its reader) */
    /* net (netlib.c): while xfds is set, link_read also polls these and
     * returns -3 when one is readable or xdeadline (monotonic ms, <0 none)
     * passed. Borrowed, set only around one wait. */
    struct pollfd *xfds;
    int nxfds;
    double xdeadline;

    /* mail and posts written later, several in one write (link.c) */
    char *cork;
    size_t cork_len, cork_cap;
    int cork_n;

    /* the frame being sent (reply.c) */
    bx_hdr hdr;
    char *wbuf;
    size_t wlen, wcap;

    /* counters for stats */
    long long executions, errors;
} bx_node;

/* limits.c ---------------------------------------------------------------- */
/* Parses init's "limits" object into lim (absent: none, max_output at its
 * default); 0, or -1 with a BAD_REQUEST reason. */
int limits_parse(json_t *limits, bx_limits *lim, char *err, size_t errlen);
/* The timeout and instruction budget of one request: req's own fields over
 * lim's (req may be NULL). 0, or -1 when a field is not a non-negative
 * number. */
int limits_parse_request(const bx_limits *lim, json_t *req, double *timeout, long long *instr);
/* The lua_Alloc; ud is the bx_node. Refuses growth past memory_limit. */
void *limits_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Installs the SIGALRM handler (no SA_RESTART) for the node's state. */
int limits_install_signals(void);
/* Points the signal handler at L (NULL while no state exists). */
void limits_set_state(lua_State *L);
/* Tracks the coroutine running innermost, so a timer can reach it. */
lua_State *limits_set_running(lua_State *co);
/* Arms the wall timer and, if instr > 0, the count hook for one request. */
void limits_arm(bx_node *n, double timeout, long long instr);
/* Disarms the timer and hooks and clears every trip flag. */
void limits_disarm(bx_node *n);
/* Arms a small instruction budget unless a hook is already set: used while
 * turning an error object into text, and before lua_close runs __gc. */
void limits_arm_budget(bx_node *n, int count);
/* A count hook on L (and the main state) that flushes kept mail, where no
 * limit's hook runs already (that one flushes too). */
void limits_arm_flush(lua_State *L);
/* Makes every further Lua instruction fail (before lua_close). */
void limits_trip_now(bx_node *n);
int limits_timed_out(void);
/* True while the wall timer or the instruction budget has tripped. */
int limits_tripped(bx_node *n);
/* Charges a thread's fresh hook countdown to the budget (coroutines). */
void limits_charge_thread(lua_State *L);
/* Gives `to` the hook of `from` before it runs, so the limits follow into
 * a coroutine (lua_newthread copies hooks only at creation) and back out
 * of it; a reset countdown is charged to the budget. */
void limits_pass_hook(lua_State *from, lua_State *to);
/* Applies the process rlimits that depend on lim. 0 or -1 (errno set). */
int limits_apply_rlimits(const bx_limits *lim, int networked, char *err, size_t errlen);

/* testhooks.c, linked only into bioxen-vmnode-testhooks (a test build that
 * lets the isolation tests make forbidden system calls): NULL here. */
void testhooks_register(lua_State *L) __attribute__((weak));
int testhooks_skip_seccomp(void) __attribute__((weak));

/* isolate.c: uid/gid drop, no_new_privs and, in full isolation, seccomp;
 * the last step of init. BX_OK, or a code with err. */
enum bx_err isolate_apply(bx_node *n, json_t *init, char *err, size_t errlen);
/* seccomp.c: installs the allow-list for good. 0 or -1 with err. */
int seccomp_lock(int networked, char *err, size_t errlen);
/* Raises the open-file limit to what a networked VM needs; 0 or -1. */
int limits_net_files(void);
#define BX_NET_FILES 600   /* networked VMs hold a few hundred sockets */

/* sandbox.c --------------------------------------------------------------- */
/* Builds a fresh sandboxed state into n->L (callbacks registered).
 * Returns 0, or -1 when memory ran out. */
int sandbox_open(bx_node *n);
/* Builds the VM-independent part of the state ahead of init (spare nodes
 * wait for init for a while; a create then only adds the VM's part). */
void sandbox_prebuild(bx_node *n);
/* Closes n->L (finalizers run under a tripped hook). */
void sandbox_close(bx_node *n);
/* Per-request print capture. */
void sandbox_output_reset(bx_node *n);
void sandbox_output_append(bx_node *n, const char *p, size_t len);

/* callback.c -------------------------------------------------------------- */
/* Registers one global per callback name in n->callbacks. Needs protection. */
void callback_register(lua_State *L, bx_node *n);

/* link.c ------------------------------------------------------------------ */
/* Blocks for the next frame. Returns 1 with line and len set (valid until the
 * next link_* call), 0 on EOF, -1 on a broken stream, -2 when the wall timer
 * fired (only if stop_on_timeout), -3 when an extra fd of n->xfds is ready or
 * n->xdeadline passed (only if stop_on_timeout and xfds is set). */
int link_read(bx_node *n, char **line, size_t *len, int stop_on_timeout);
/* Writes msg as one frame with one write(); steals msg. 0, -1 (link gone),
 * or -2: msg is not a reply and is over the frame limit; nothing was sent. */
int link_send(bx_node *n, json_t *msg);
/* As link_send, for the pipelined mail and posts of the running script L:
 * kept with others (up to LINK_CORK_FRAMES) and written by the next
 * link_send or link_read, or within BX_INSTR_PERIOD instructions of L
 * (limits_arm_flush), whichever comes first. */
int link_send_later(bx_node *n, lua_State *L, json_t *msg);
/* Writes what link_send_later kept: 0, or -1 (link gone). */
int link_flush(bx_node *n);
void link_queue_push(bx_node *n, const char *line, size_t len);
/* want(msg, ud): 1 = the awaited frame (stop), 0 = consumed, -1 = not
 * ours (queued for after the request). msg is borrowed. */
typedef int (*link_want)(json_t *msg, void *ud);
/* Reads frames until want says 1 (returns 1) or the wall timer fires
 * (returns -2) or, with n->xfds set, a net fd / deadline is due (-3);
 * exits the process when the manager is gone. */
int link_await(bx_node *n, link_want want, void *ud);
/* Pops the oldest queued frame (caller frees) or NULL. */
bx_queued *link_queue_pop(bx_node *n);

/* reply.c ----------------------------------------------------------------- */
/* Serialises msg (a reply, callback or event) as one frame with its '\n'
 * into n's buffer, the header first if n->hdr.on (then cleared); *buf is
 * valid until the next call. 0, or -1 when out of memory. */
int reply_build(bx_node *n, json_t *msg, const char **buf, size_t *len);

/* The node record behind a state: the allocator's userdata. */
static inline bx_node *node_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

#endif
