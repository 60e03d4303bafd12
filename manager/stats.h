/* stats.h - what the manager counts about runs and VMs (stats.c), the one
 * place that counts them: per-VM counters kept from the replies it already
 * reads, the history ring of recent runs, the window of recent durations
 * and totals since start. Others only read these. No I/O. */
#ifndef BX_STATS_H
#define BX_STATS_H

#include <jansson.h>
#include <stdint.h>

#include "proto.h"
#include "quantile.h"
#include "validate.h"

#define STATS_HISTORY REQ_HISTORY_MAX    /* runs kept for "history" */
#define STATS_OP_MAX 16         /* op names longer than this are cut */
#define STATS_WINDOW 4096       /* durations kept for percentiles */

/* Embedded in struct vm; zero is the fresh state. Survives node restarts:
 * it counts for the VM's name, not for one process. */
struct vmstats {
    uint64_t executions, errors, restarts;
    json_int_t heap_bytes;      /* Lua heap after the last successful run */
    double cpu_ms, rss_bytes;   /* from the latest "stats" reply; < 0 unknown */
    enum bx_err last_code;      /* BX_OK: no error yet */
    double last_ts;
    char last_msg[256];         /* cut to fit */
};

/* Totals since the manager started. Written by stats.c only. */
struct stats_totals {
    uint64_t executions, errors;    /* finished exec/call runs; errors <= executions */
    uint64_t errors_by_code[BX_E__COUNT];
    uint64_t vms_created, vms_crashed, vms_restarted;
    double duration_sum_ms;     /* successful runs with a duration */
    uint64_t duration_count;
    double min_ms, max_ms;      /* over those runs; 0 before the first */
    json_int_t peak_mem;        /* largest heap a run (of any outcome) ended with */
    double total_ms;            /* every run with a known duration, failed ones too */
};
extern struct stats_totals stats_totals;

/* The durations (ms) of the last STATS_WINDOW successful runs, for the
 * percentiles (qring_quantiles). Written by stats.c only. */
extern struct qring stats_window;

struct vm;

/* One finished exec/call on vm: code "" (or NULL) for success, ms < 0 when
 * not known (a failure's ms counts in total_ms and METRICS_RECORDED only), msg the error's message (NULL: none). Counts it everywhere:
 * totals, the duration window, the history ring and vm's counters. */
void stats_run(struct vm *vm, const char *op, const char *code, double ms,
               json_int_t mem, const char *msg);
/* An event the manager emits (VM_CRASH, VM_RESTART ...); vm may be NULL. */
void stats_event(struct vm *vm, const char *type);
void stats_vm_created(struct vm *vm);
/* The node's "stats" result (borrowed, changed in place): adds the
 * manager's per-VM counters and last_error, caches cpu_ms and rss_bytes. */
void stats_vm_reply(struct vm *vm, json_t *result);
/* The last n runs (n <= STATS_HISTORY), oldest first: a new array. */
json_t *stats_history(size_t n);
/* {"LUA_ERROR": 3, ...}: codes seen at least once; a new object. */
json_t *stats_errors_by_code(void);

#endif
