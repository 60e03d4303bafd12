/* metrics.c - execution counters and the duration ring behind "metrics".
 * Called by vmproc.c for every exec/call reply and by router.c for the op. */
#include "manager.h"

#include <stdlib.h>

#include "promhttp.h"

static void metrics_totals(json_t *r);

void metrics_record(int failed, double ms, json_int_t mem)
{
    struct metrics *m = &mgr->m;
    m->executions++;
    if (failed)
        m->errors++;
    if (mem > m->peak_mem)
        m->peak_mem = mem;
    if (ms < 0)
        return;
    if (m->ring_len == MGR_METRICS_RING)
        m->sum_ms -= m->ring[m->ring_pos];
    else
        m->ring_len++;
    m->ring[m->ring_pos] = ms;
    m->ring_pos = (m->ring_pos + 1) % MGR_METRICS_RING;
    m->sum_ms += ms;
    if (m->ring_len == 1 || ms < m->min_ms)
        m->min_ms = ms;
    if (ms > m->max_ms)
        m->max_ms = ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentiles over the last MGR_METRICS_RING durations; sorted on demand
 * because metrics is rare and executes are not. */
json_t *metrics_report(void)
{
    struct metrics *m = &mgr->m;
    double p50 = 0, p99 = 0, avg = 0;
    if (m->ring_len) {
        double *s = malloc(m->ring_len * sizeof *s);
        if (s) {
            for (size_t i = 0; i < m->ring_len; i++)
                s[i] = m->ring[i];
            qsort(s, m->ring_len, sizeof *s, cmp_double);
            p50 = s[(m->ring_len - 1) / 2];
            p99 = s[(size_t)((m->ring_len - 1) * 0.99)];
            free(s);
        }
        avg = m->sum_ms / m->ring_len;
    }
    json_t *r = json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:f}",
                     "vms", (json_int_t)mgr->nvms,
                     "executions", (json_int_t)m->executions,
                     "errors", (json_int_t)m->errors,
                     "error_rate", m->executions ? (double)m->errors / m->executions : 0.0,
                     "avg_ms", avg, "min_ms", m->min_ms, "max_ms", m->max_ms,
                     "p50_ms", p50, "p99_ms", p99,
                     "peak_mem_bytes", m->peak_mem,
                     "uptime_s", proto_now() - mgr->start_time);
    metrics_totals(r);
    return r;
}

/* Totals since start next to the windowed figures above; the old keys stay
 * as they were (executions and errors were always totals). */
static void metrics_totals(json_t *r)
{
    struct metrics *m = &mgr->m;
    json_t *t = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I}",
                          "vms_alive", (json_int_t)mgr->nvms,
                          "executions_total", (json_int_t)m->executions,
                          "errors_total", (json_int_t)m->errors,
                          "vms_created_total", (json_int_t)stats_totals.vms_created,
                          "vms_crashed_total", (json_int_t)stats_totals.vms_crashed,
                          "vms_restarted_total", (json_int_t)stats_totals.vms_restarted,
                          "errors_by_code", stats_errors_by_code(),
                          "duration_window", (json_int_t)m->ring_len,
                          "duration_window_max", (json_int_t)MGR_METRICS_RING);
    if (r && t)
        json_object_update(r, t);
    json_decref(t);
    if (r && promhttp_port() > 0)
        json_object_set_new(r, "metrics_port", json_integer(promhttp_port()));
}
