/* manager.h - the manager's shared types: the daemon, its clients, its VMs
 * and their node processes. Internal to manager/; every manager .c includes
 * it. Ownership is stated on each field; functions live in the file named by
 * their prefix (client_* in client.c, vmreq_* in vmreq.c, ...). */
#ifndef BX_MANAGER_H
#define BX_MANAGER_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "stats.h"

#define MGR_OUT_HIGH ((size_t)64 << 20)   /* stop reading a client above this */
#define BX_IDENT_MAX 80     /* "token:" + a 64-character name, or "uid:" + digits */

struct client;
struct vm;
struct pool;
struct node;
struct bx_token;
struct cputhr;

/* Success acks gathered per node before they go as one mail_acks frame:
 * half the node's send window (vmnode/mailbox.h MAILBOX_WINDOW), so a
 * sender that never waits never fills its window either. */
#define NODE_ACK_BATCH 32

/* One request in flight to a node (vmreq.c). The client is named by its id,
 * never by pointer: the client may be gone by the time the node answers. */
enum pend_kind { PEND_INIT, PEND_EXEC, PEND_OTHER };
struct pending {
    struct pending *next;
    uint64_t node_id;       /* id the manager sent to the node */
    uint64_t client_id;     /* 0: nobody waits (a restart's init) */
    json_t *orig_id;        /* owned: the client's id, echoed verbatim */
    enum pend_kind kind;
    double timeout;         /* effective wall timeout, 0 = none */
    char op[STATS_OP_MAX];  /* the VM op, for stats.c ("" for init) */
    size_t id_len;
    char id_text[];         /* orig_id as JSON text, for pass-through replies */
};

/* A running bioxen-vmnode process. Owned by the pid table in node.c until
 * reaped; vm is NULL once the VM let go of it (killed on purpose). */
struct node {
    struct node *hnext;     /* pid table chain */
    pid_t pid;
    struct bufferevent *chan;  /* owned; NULL after EOF or detach */
    struct vm *vm;
    int reaped, status;
    int busy;               /* inside its read callback: do not free */
    size_t scanned;         /* linebuf position */
    int dirty;              /* queued in flush.c */
    double cpu_s;           /* CPU seconds at death (wait4 rusage) */
    unsigned cg_seq;        /* its cgroup (cgroup.c), removed once reaped */
    /* mail and post acks not yet written (vmreq.c vmreq_ack) */
    json_int_t acks[NODE_ACK_BATCH];
    int nacks;
    int ack_now;            /* the node waits for ack_need more acks (mail_sync) */
    int ack_need;
};

enum vm_state { VM_STARTING, VM_READY };

/* A VM: a name, its settings, its node and its queue. Made and freed by
 * vm.c; each group of fields below names the file that writes it. */
struct vm {
    struct vm *hnext;                   /* registry chain (registry.c) */
    struct vm *own_prev, *own_next;     /* owner's list of VMs (vm.c) */
    char name[BX_NAME_MAX + 1];
    /* settings, from the create request (vm.c) */
    json_t *init;           /* owned: the init frame body (limits, callbacks, ...) */
    double timeout;         /* VM default wall timeout */
    char timeout_text[40];  /* the same as JSON text, for node requests */
    json_int_t instruction_limit;
    double cpu_limit;
    unsigned long long heap_limit;  /* limits.memory_limit; 0 = none */
    double cpu_share;       /* create's cpu_share: CPUs of quota (cgroup cpu); 0 = none */
    struct cputhr *cpu_thr; /* owned by cputhrottle.c while it has a share */
    int persistent, networked;
    int full_isolation;     /* new namespaces, seccomp, uid drop (spawn.c, the node) */
    int restart_on_crash;   /* restart="on-crash" */
    uint64_t owner_id;      /* 0 once the owner left (persistent VMs) */
    char owner[BX_IDENT_MAX];   /* the creator's identity: who may use it (identity.c) */
    int shared;             /* create's "shared": every identity may use it */
    enum vm_state state;    /* READY once init is answered (vm.c) */
    /* supervision (restart.c) */
    int restarting;         /* backing off after a crash; no node meanwhile */
    int crashes;            /* within the window that began at crash_since */
    double crash_since;
    struct event *restart_ev;   /* owned: the back-off timer */
    struct evbuffer *held;  /* owned: requests written while restarting (vmreq.c
                               writes them, and moves them behind the next init) */
    /* the process (node.c) */
    struct node *node;      /* current process; NULL only while restarting */
    json_t *isolation;      /* owned: what the current node got, for create's reply */
    /* the request queue (vmreq.c) */
    struct pending *head, *tail;   /* FIFO of requests sent to the node */
    size_t npending;
    struct event *deadline; /* owned: timer on the FIFO head */
    uint64_t next_id;       /* next node request id */
    struct vmstats st;      /* counters (stats.c) */
    struct pool *pool;      /* the connection's pool it serves (pool.c), or NULL */
};

struct client {
    uint64_t id;            /* slot | generation << 32; never 0 */
    struct bufferevent *bev;  /* owned */
    struct vm *vms;         /* VMs this connection owns (own_next list) */
    int is_tcp, authed, subscribed, closing, reading_paused, dirty;
    int eof;                /* peer half-closed: no more requests, replies still owed */
    int listed;             /* on the manager's close_list */
    size_t owed;            /* requests read whose one reply has not gone out */
    size_t scanned;         /* linebuf position */
    struct client *sub_prev, *sub_next;   /* subscriber list */
    int metrics_events;     /* asked for METRICS_RECORDED (metrics_events op) */
    struct client *met_prev, *met_next;   /* list of those that asked */
    struct client *close_next;            /* close-soon list */
    struct pool *pool;      /* owned (pool.c); NULL until the first pool op */
    char identity[BX_IDENT_MAX];    /* "uid:N" or "token:NAME"; "" before auth (identity.c) */
    int admin;              /* may shut the manager down and reach every VM */
    struct remote_link *remote;  /* a proxy of another host's client (remote.c): no bev */
    uint64_t fwd_hosts;     /* hosts its requests were forwarded to, a bit each (fwd.c) */
};

struct manager {
    struct event_base *base;
    /* config */
    const char *socket_path, *tcp_addr, *vmnode_path;
    struct bx_token *tokens;    /* owned: --token-file's NAME:TOKEN lines (identity.c) */
    size_t ntokens;
    const char **admins;    /* owned array of argv strings: --admin IDENTITY */
    size_t nadmins;
    uid_t uid;              /* the manager's own: an admin on the Unix socket */
    unsigned socket_mode;   /* --socket-mode; 0: owner only */
    const char *socket_group;   /* --socket-group NAME|GID, or NULL */
    size_t max_frame;
    double grace;
    int exit_with_stdin;
    int no_cgroups;         /* --no-cgroups: rlimits only */
    unsigned spares;        /* --spares: nodes kept ready (spare.c) */
    int no_zygote;          /* --no-zygote: exec every node (zygote.c) */
    /* runtime */
    struct evconnlistener *unix_l, *tcp_l;
    struct event *sig_term, *sig_int, *sig_chld, *stdin_ev, *reaper, *stop_tick;
    size_t nclients;
    struct client **slots;  /* client table, indexed by id's low 32 bits */
    uint32_t nslots, *free_slots, nfree;
    uint32_t gen;
    struct client *subscribers, *close_list;
    struct client *metrics_listeners;   /* METRICS_RECORDED wanted (events.c) */
    size_t nvms, nbuckets;
    struct vm **buckets;    /* registry */
    struct node **pids;     /* pid table, 256 buckets (node.c) */
    size_t nnodes;
    unsigned node_seq;      /* names node cgroups (node.c, spare.c) */
    double start_time;
    int shutting_down;
    int draining;           /* stdin closed: answer what was read, then stop */
    double stop_deadline;
};

extern struct manager *mgr;

/* linebuf.c: 1 with *line (valid until the caller drains *len + 1 bytes),
 * 0 when more bytes are needed, -1 when the frame is longer than max. */
int linebuf_next(struct evbuffer *in, size_t *scanned, size_t max,
                 const char **line, size_t *len);

/* flush.c */
void flush_mark(struct bufferevent *bev, int *flag);
void flush_forget(struct bufferevent *bev, int *flag);
void flush_all(void);
void flush_free(void);

/* server.c */
int server_listen(struct manager *m, char *err, size_t errlen);
void server_close(struct manager *m);
const char *server_tcp_bound(void);    /* "HOST:PORT" listened on, or NULL */

/* client.c */
void client_accept(struct manager *m, evutil_socket_t fd, int is_tcp);
struct client *client_find(uint64_t id);
struct remote_link;
struct client *client_new_proxy(struct remote_link *link, const char *identity, int admin);
void client_dispatch_proxy(struct client *c, json_t *req);     /* router_dispatch, counting owed */
void client_send(struct client *c, json_t *msg);       /* msg borrowed */
void client_send_new(struct client *c, json_t *msg);   /* msg stolen */
/* Sends {"id":<id>rest\n: a node's reply passed through under the client's id. */
void client_send_passed(struct client *c, const char *id, size_t id_len,
                        const char *rest, size_t rest_len);
void client_close_soon(struct client *c);
void client_stop_all(struct manager *m);
/* Half-closes every client (the embedder left): no more requests are read;
 * each is closed once it has its replies. */
void client_drain_all(struct manager *m);
size_t client_count(struct manager *m);
int client_all_flushed(struct manager *m);
void client_free_all(struct manager *m);

/* identity.c: who a connection is and what it may do (docs/security.md).
 * The loaders fail with a message in err for main.c to print. */
int identity_load_tokens(struct manager *m, const char *file, char *err, size_t n);
int identity_add_admin(struct manager *m, const char *id, char *err, size_t n);
int identity_peer(struct client *c, int fd);    /* Unix: SO_PEERCRED; -1 if unknown */
/* TCP auth: BX_OK (c is now token:NAME), AUTH_REQUIRED or FORBIDDEN. */
enum bx_err identity_auth(struct client *c, const char *token, char *err, size_t n);
int identity_owns(const struct client *c, const struct vm *vm);  /* its owner, or an admin */
int identity_sees(const struct client *c, const struct vm *vm);  /* owns it, or it is shared */
void identity_free(struct manager *m);

/* router.c */
void router_dispatch(struct client *c, json_t *req);
struct op_def;
void router_dispatch_op(struct client *c, json_t *req, const struct op_def *d);
/* mgrops.c: a request for a name whose create is still claiming it in the
 * cluster is held and carried out after (1 when held). */
int mgrop_hold(struct client *c, const char *name, json_t *req);

/* registry.c */
int registry_init(struct manager *m);
struct vm *registry_find(const char *name);
void registry_add(struct vm *vm);
void registry_remove(struct vm *vm);
/* Fills a malloc'd array with every VM; caller frees. */
struct vm **registry_all(size_t *n);

/* vm.c: a VM's life. Create and destroy, the owner's list, init's answer.
 * vm_create: the VM, or NULL with *code and err. orig_id NULL: nobody waits
 * for the init reply (a pool VM). */
struct vm *vm_create(const char *name, json_t *init, struct client *owner,
                     json_t *orig_id, enum bx_err *code, char *err, size_t errlen);
/* Every pending request is answered code/why, the node killed, the VM freed. */
void vm_destroy(struct vm *vm, enum bx_err code, const char *why);
void vm_destroy_all(enum bx_err code, const char *why);
void vm_disown(struct client *c);   /* c is going: its non-persistent VMs go too */
/* The node answered init (msg borrowed): the VM is ready, or it goes. */
void vm_init_reply(struct vm *vm, uint64_t client_id, json_t *orig_id, json_t *msg);

/* vmreq.c: the per-VM FIFO of requests sent to its node, the deadline on its
 * head, and the matching of replies to it. */
int vmreq_init(struct vm *vm);      /* 0, or -1 (out of memory) */
void vmreq_free(struct vm *vm);     /* after vmreq_fail_all */
int vmreq_send(struct vm *vm, json_t *req, uint64_t client_id, json_t *orig_id,
               enum pend_kind kind, double timeout);
/* A frame that expects no reply (cb_result, stream_ack, mail answers). */
void vmreq_send_raw(struct vm *vm, json_t *msg);
void vmreq_ack(struct vm *vm, json_t *k);      /* a mail/post success ack, batched */
void vmreq_ack_sync(struct vm *vm, json_t *need);  /* the node waits for its acks */
void vmreq_send_items(struct vm *vm, json_t *k, json_t *items);  /* mail_items, by hand */
/* A validated VM op (router.c): written to the node without a JSON dump. */
int vmreq_send_op(struct vm *vm, const char *op, json_t *req, int runs,
                  uint64_t client_id, json_t *orig_id);
/* vm's new node gets init first, then what was held while it restarted. */
void vmreq_send_init(struct vm *vm, uint64_t client_id, json_t *orig_id);
/* Answers every pending request: the head with head_code, the rest with
 * VM_CRASHED; restarted tells clients the VM lives on fresh. Returns how many. */
size_t vmreq_fail_all(struct vm *vm, enum bx_err head_code, const char *msg, int restarted);
/* A node's reply: parsed (msg borrowed), or passed through as bytes (0, or
 * -1 when it must be parsed after all). A mismatch breaks the node. */
void vmreq_reply(struct node *n, json_t *msg);
int vmreq_reply_passed(struct node *n, const char *line, size_t len);

/* node.c: node processes. Start (fresh or a spare), the channel, the pid
 * table, reaping, and the cause of a death. */
enum bx_err node_spawn(struct vm *vm, uint64_t client_id, json_t *orig_id,
                       char *err, size_t errlen);
void node_detach(struct node *n);   /* the VM lets go: SIGKILL; NULL is fine */
void node_broken(struct node *n);   /* it broke the protocol: killed, a crash */
void node_reap_cb(evutil_socket_t sig, short ev, void *arg);
void node_free_all(struct manager *m);

/* nodeframe.c: where a frame from a node goes (callback, stream, mailbox,
 * policy, event, reply). */
void nodeframe_route(struct node *n, const char *line, size_t len);
void nodeframe_done(struct vm *vm);     /* after the frames of one read */

/* restart.c: what follows a node's death, and restart="on-crash". */
void restart_fresh(struct vm *vm, enum bx_err reason);  /* TIMEOUT, CPU_LIMIT, MEMORY_LIMIT */
void restart_crashed(struct vm *vm, int status);        /* anything else (wait status) */
void restart_forget(struct vm *vm);     /* vm goes: its timer and held requests */

/* events.c */
void events_emit(struct vm *vm, const char *type, json_t *detail);
void events_emit_json(struct vm *vm, json_t *ev);
void events_subscribe(struct client *c);
void events_unsubscribe(struct client *c);
/* METRICS_RECORDED: a client opts in or out (on closing: out); a finished
 * run is reported to the listeners that see its VM. Nothing is built while
 * mgr->metrics_listeners is NULL, the default. */
void events_metrics_listen(struct client *c, int on);
void events_metrics_recorded(struct vm *vm, const char *op, enum bx_err code, double ms,
                             json_int_t mem);

/* metrics.c: the "metrics" op's report, read from stats.c's counters. */
json_t *metrics_report(void);

/* pool.c: the per-connection pool of stateless VMs (op run) */
void pool_vm_settled(struct vm *vm);    /* a frame from a pool VM's node was handled */
void pool_vm_gone(struct vm *vm);       /* vm_destroy of a pool VM */
void pool_client_gone(struct client *c);

/* main.c */
void manager_shutdown(const char *why);

#endif
