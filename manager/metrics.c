/* metrics.c - the "metrics" op's report: totals since start and percentiles
 * over the duration window, read from what stats.c counts. Keeps no state
 * of its own, so "metrics", "history", "stats" and Prometheus agree. */
#include "manager.h"

#include "cluster.h"
#include "promhttp.h"
#include "spread.h"

static void metrics_totals(json_t *r);

/* Nearest-rank percentiles over the last STATS_WINDOW durations; sorted on
 * demand because metrics is rare and executes are not. Prometheus's summary
 * quantiles are these same two figures. */
json_t *metrics_report(void)
{
    static const double qs[2] = {0.5, 0.99};
    const struct qring *w = &stats_window;
    const struct stats_totals *t = &stats_totals;
    double p[2];
    qring_quantiles(w, qs, 2, p);   /* out of memory: 0s, as before any run */
    double avg = w->len ? w->sum / (double)w->len : 0, p50 = p[0], p99 = p[1];
    json_t *r = json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:f}",
                     "vms", (json_int_t)mgr->nvms,
                     "executions", (json_int_t)t->executions,
                     "errors", (json_int_t)t->errors,
                     "error_rate", t->executions ? (double)t->errors / t->executions : 0.0,
                     "avg_ms", avg, "min_ms", t->min_ms, "max_ms", t->max_ms,
                     "p50_ms", p50, "p99_ms", p99,
                     "peak_mem_bytes", t->peak_mem,
                     "uptime_s", proto_now() - mgr->start_time);
    if (r)  /* IsoBox's totalDuration: every run whose duration is known */
        json_object_set_new(r, "total_duration_ms", json_real(t->total_ms));
    metrics_totals(r);
    return r;
}

/* Totals since start next to the windowed figures above; the old keys stay
 * as they were (executions and errors were always totals). */
static void metrics_totals(json_t *r)
{
    const struct stats_totals *st = &stats_totals;
    json_t *t = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I}",
                          "vms_alive", (json_int_t)mgr->nvms,
                          "executions_total", (json_int_t)st->executions,
                          "errors_total", (json_int_t)st->errors,
                          "vms_created_total", (json_int_t)st->vms_created,
                          "vms_crashed_total", (json_int_t)st->vms_crashed,
                          "vms_restarted_total", (json_int_t)st->vms_restarted,
                          "errors_by_code", stats_errors_by_code(),
                          "duration_window", (json_int_t)stats_window.len,
                          "duration_window_max", (json_int_t)STATS_WINDOW);
    if (r && t)
        json_object_update(r, t);
    json_decref(t);
    if (r && cluster_enabled())
        spread_report(r);
    if (r && promhttp_port() > 0)
        json_object_set_new(r, "metrics_port", json_integer(promhttp_port()));
}
