/* manager.h - the manager's shared types: the daemon, its clients, its VMs
 * and their node processes. Internal to manager/; every manager .c includes
 * it. Ownership is stated on each field; functions live in the file named by
 * their prefix (client_* in client.c, vmproc_* in vmproc.c, ...). */
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
#define MGR_METRICS_RING 4096

struct client;
struct vm;
struct pool;
struct node;

/* One request in flight to a node. The client is named by its id, never by
 * pointer: the client may be gone by the time the node answers. */
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

/* A running bioxen-vmnode process. Owned by the pid table in vmproc.c until
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
};

enum vm_state { VM_STARTING, VM_READY };

struct vm {
    struct vm *hnext;                   /* registry chain */
    struct vm *own_prev, *own_next;     /* owner's list of VMs */
    char name[BX_NAME_MAX + 1];
    json_t *init;           /* owned: the init frame body (limits, callbacks, ...) */
    double timeout;         /* VM default wall timeout */
    char timeout_text[40];  /* the same as JSON text, for node requests */
    json_int_t instruction_limit;
    double cpu_limit;
    int persistent, networked;
    int full_isolation;     /* new namespaces, seccomp, uid drop (spawn.c, the node) */
    int restart_on_crash;   /* restart="on-crash" */
    int restarting;         /* backing off after a crash; no node meanwhile */
    int crashes;            /* within the window that began at crash_since */
    double crash_since;
    struct event *restart_ev;   /* owned: the back-off timer */
    struct evbuffer *held;  /* owned: requests written while restarting */
    json_t *isolation;      /* owned: what the current node got, for create's reply */
    uint64_t owner_id;      /* 0 once the owner left (persistent VMs) */
    enum vm_state state;
    struct node *node;      /* current process; never NULL while registered */
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
    struct client *close_next;            /* close-soon list */
    struct pool *pool;      /* owned (pool.c); NULL until the first pool op */
};

struct metrics {
    uint64_t executions, errors;
    double ring[MGR_METRICS_RING];
    size_t ring_len, ring_pos;
    double sum_ms, min_ms, max_ms;
    json_int_t peak_mem;
};

struct manager {
    struct event_base *base;
    /* config */
    const char *socket_path, *tcp_addr, *vmnode_path;
    char *token;            /* owned; NULL unless --token-file */
    size_t max_frame;
    double grace;
    int exit_with_stdin;
    int no_cgroups;         /* --no-cgroups: rlimits only */
    unsigned spares;        /* --spares: nodes kept ready (spare.c) */
    /* runtime */
    struct evconnlistener *unix_l, *tcp_l;
    struct event *sig_term, *sig_int, *sig_chld, *stdin_ev, *reaper, *stop_tick;
    size_t nclients;
    struct client **slots;  /* client table, indexed by id's low 32 bits */
    uint32_t nslots, *free_slots, nfree;
    uint32_t gen;
    struct client *subscribers, *close_list;
    size_t nvms, nbuckets;
    struct vm **buckets;    /* registry */
    struct node **pids;     /* pid table, 256 buckets */
    size_t nnodes;
    unsigned node_seq;      /* names node cgroups */
    struct metrics m;
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

/* client.c */
void client_accept(struct manager *m, evutil_socket_t fd, int is_tcp);
struct client *client_find(uint64_t id);
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

/* router.c */
void router_dispatch(struct client *c, json_t *req);

/* registry.c */
int registry_init(struct manager *m);
struct vm *registry_find(const char *name);
void registry_add(struct vm *vm);
void registry_remove(struct vm *vm);
/* Fills a malloc'd array with every VM; caller frees. */
struct vm **registry_all(size_t *n);

/* vmproc.c */
struct vm *vmproc_create(const char *name, json_t *init, struct client *owner,
                         json_t *orig_id, enum bx_err *code, char *err, size_t errlen);
int vmproc_send(struct vm *vm, json_t *req, uint64_t client_id, json_t *orig_id,
                enum pend_kind kind, double timeout);
void vmproc_send_raw(struct vm *vm, json_t *msg);
/* A validated VM op (router.c): written to the node without a JSON dump. */
int vmproc_send_op(struct vm *vm, const char *op, json_t *req, int runs,
                   uint64_t client_id, json_t *orig_id);
void vmproc_destroy(struct vm *vm, enum bx_err code, const char *why);
void vmproc_reap_cb(evutil_socket_t sig, short ev, void *arg);
void vmproc_kill_all(struct manager *m);
void vmproc_disown(struct client *c);
void vmproc_free_all(struct manager *m);

/* events.c */
void events_emit(struct vm *vm, const char *type, json_t *detail);
void events_emit_json(struct vm *vm, json_t *ev);
void events_subscribe(struct client *c);
void events_unsubscribe(struct client *c);

/* metrics.c */
/* One exec/call reply; ms < 0 when it carried no duration. */
void metrics_record(int failed, double ms, json_int_t mem);
json_t *metrics_report(void);

/* pool.c: the per-connection pool of stateless VMs (op run) */
int pool_client_op(struct client *c, json_t *id, const char *op, json_t *req);
void pool_vm_settled(struct vm *vm);    /* a frame from a pool VM's node was handled */
void pool_vm_gone(struct vm *vm);       /* vmproc_destroy of a pool VM */
void pool_client_gone(struct client *c);

/* main.c */
void manager_shutdown(const char *why);

#endif
