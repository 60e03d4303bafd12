/* stats.c - counts every run once, where the manager learns its outcome:
 * per-VM counters, the history ring, the duration window and totals since
 * start (see stats.h). metrics.c and promhttp.c only read what it holds. */
#include "manager.h"
#include "stats.h"

#include <stdio.h>
#include <string.h>

struct stats_totals stats_totals;
static double window_ms[STATS_WINDOW];
struct qring stats_window = {.v = window_ms, .cap = STATS_WINDOW};

struct run_entry {
    double ts, ms;              /* ms < 0: not known */
    json_int_t mem;
    enum bx_err code;           /* BX_OK: it succeeded */
    char vm[BX_NAME_MAX + 1];
    char op[STATS_OP_MAX];
};

/* A fixed ring: history costs the same whatever the load. */
static struct run_entry ring[STATS_HISTORY];
static size_t ring_len, ring_pos;

static void history_push(struct vm *vm, const char *op, enum bx_err code, double ms,
                         json_int_t mem)
{
    struct run_entry *e = &ring[ring_pos];
    e->ts = proto_now();
    e->ms = ms;
    e->mem = mem;
    e->code = code;
    snprintf(e->vm, sizeof e->vm, "%s", vm->name);
    snprintf(e->op, sizeof e->op, "%s", op && *op ? op : "exec");
    ring_pos = (ring_pos + 1) % STATS_HISTORY;
    if (ring_len < STATS_HISTORY)
        ring_len++;
}

/* A successful run's duration: the window (the oldest leaves it) and totals. */
static void duration_push(double ms)
{
    struct stats_totals *t = &stats_totals;
    qring_push(&stats_window, ms);
    if (t->duration_count == 0 || ms < t->min_ms)
        t->min_ms = ms;
    if (ms > t->max_ms)
        t->max_ms = ms;
    t->duration_sum_ms += ms;
    t->duration_count++;
}

void stats_run(struct vm *vm, const char *op, const char *code, double ms,
               json_int_t mem, const char *msg)
{
    int failed = code && *code;
    enum bx_err e = failed ? bx_err_from_code(code) : BX_OK;
    if (failed && e == BX_OK)   /* "OK" sent as an error code: still an error */
        e = BX_E_INTERNAL;
    history_push(vm, op, e, failed ? -1 : ms, mem);
    if (mgr->metrics_listeners)     /* opt-in: off the hot path by default */
        events_metrics_recorded(vm, op, e, ms, mem);
    if (ms >= 0)
        stats_totals.total_ms += ms;
    stats_totals.executions++;
    vm->st.executions++;
    if (mem > stats_totals.peak_mem)
        stats_totals.peak_mem = mem;
    if (!failed) {
        vm->st.heap_bytes = mem;
        if (ms >= 0)
            duration_push(ms);
        return;
    }
    stats_totals.errors++;
    vm->st.errors++;
    stats_totals.errors_by_code[e]++;
    vm->st.last_code = e;
    vm->st.last_ts = proto_now();
    snprintf(vm->st.last_msg, sizeof vm->st.last_msg, "%s", msg ? msg : "");
}

void stats_event(struct vm *vm, const char *type)
{
    if (strcmp(type, "VM_CRASH") == 0) {
        stats_totals.vms_crashed++;
    } else if (strcmp(type, "VM_RESTART") == 0) {
        stats_totals.vms_restarted++;
        if (vm)
            vm->st.restarts++;
    }
}

void stats_vm_created(struct vm *vm)
{
    memset(&vm->st, 0, sizeof vm->st);
    vm->st.cpu_ms = vm->st.rss_bytes = -1;
    stats_totals.vms_created++;
}

static json_t *last_error(struct vm *vm)
{
    if (vm->st.last_code == BX_OK)
        return json_null();
    return json_pack("{s:s, s:s, s:f}", "code", bx_err_code(vm->st.last_code),
                     "message", vm->st.last_msg, "ts", vm->st.last_ts);
}

void stats_vm_reply(struct vm *vm, json_t *result)
{
    json_t *cpu = json_object_get(result, "cpu_ms"), *rss = json_object_get(result, "rss_bytes");
    if (json_is_number(cpu))
        vm->st.cpu_ms = json_number_value(cpu);
    if (json_is_number(rss))
        vm->st.rss_bytes = json_number_value(rss);
    /* the node counts for its own process only; the manager's count spans
     * restarts and runs the node never answered (a timeout kill) */
    json_object_set_new(result, "executions", json_integer((json_int_t)vm->st.executions));
    json_object_set_new(result, "errors", json_integer((json_int_t)vm->st.errors));
    json_object_set_new(result, "restarts", json_integer((json_int_t)vm->st.restarts));
    json_object_set_new(result, "last_error", last_error(vm));
}

static json_t *entry_json(const struct run_entry *e)
{
    return json_pack("{s:f, s:s, s:s, s:o, s:b, s:o, s:I}", "ts", e->ts, "vm", e->vm,
                     "op", e->op, "duration_ms", e->ms < 0 ? json_null() : json_real(e->ms),
                     "ok", e->code == BX_OK,
                     "error", e->code == BX_OK ? json_null() : json_string(bx_err_code(e->code)),
                     "mem_bytes", e->mem);
}

json_t *stats_history(size_t n)
{
    json_t *arr = json_array();
    if (n > ring_len)
        n = ring_len;
    size_t start = (ring_pos + STATS_HISTORY - n) % STATS_HISTORY;
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, entry_json(&ring[(start + i) % STATS_HISTORY]));
    return arr;
}

json_t *stats_errors_by_code(void)
{
    json_t *o = json_object();
    for (int e = 1; o && e < BX_E__COUNT; e++)
        if (stats_totals.errors_by_code[e])
            json_object_set_new(o, bx_err_code((enum bx_err)e),
                                json_integer((json_int_t)stats_totals.errors_by_code[e]));
    return o;
}
