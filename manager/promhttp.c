/* promhttp.c - GET /metrics for Prometheus (see promhttp.h). Everything
 * comes from what the manager already holds (metrics_report, struct vm
 * counters, figures cached from the latest "stats" reply): a scrape never
 * asks a node and never blocks the loop. Other paths get 404. */
#include "manager.h"
#include "promhttp.h"

#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HTTP_TIMEOUT_S 10       /* a stalled scraper loses its connection */
#define HTTP_MAX_HEADERS 8192
#define HTTP_MAX_BODY 1024      /* GET has none; refuse uploads early */

static struct evhttp *http;
static int bound_port;

static void family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct evbuffer *b, const char *name, double v)
{
    evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

/* A label value escaped per the format: backslash, quote and newline. */
static void label_value(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            evbuffer_add_printf(b, "\\%c", *s);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, s, 1);
    }
}

static void labelled(struct evbuffer *b, const char *name, const char *label,
                     const char *value, double v)
{
    evbuffer_add_printf(b, "%s{%s=\"", name, label);
    label_value(b, value);
    evbuffer_add_printf(b, "\"} %.17g\n", v);
}

static double num(json_t *m, const char *key)
{
    return json_number_value(json_object_get(m, key));
}

static void manager_families(struct evbuffer *b)
{
    json_t *m = metrics_report(), *by_code = json_object_get(m, "errors_by_code"), *v;
    const char *code;
    family(b, "bioxen_executions_total", "counter", "Exec and call requests finished since start.");
    sample(b, "bioxen_executions_total", num(m, "executions_total"));
    family(b, "bioxen_errors_total", "counter", "Failed exec and call requests since start, by error code.");
    json_object_foreach(by_code, code, v)
        labelled(b, "bioxen_errors_total", "code", code, json_number_value(v));
    family(b, "bioxen_vms_created_total", "counter", "VMs created since start.");
    sample(b, "bioxen_vms_created_total", num(m, "vms_created_total"));
    family(b, "bioxen_vms_crashed_total", "counter", "VM node crashes since start.");
    sample(b, "bioxen_vms_crashed_total", num(m, "vms_crashed_total"));
    family(b, "bioxen_vms_restarted_total", "counter", "VM node restarts since start.");
    sample(b, "bioxen_vms_restarted_total", num(m, "vms_restarted_total"));
    family(b, "bioxen_vms_alive", "gauge", "VMs that exist now.");
    sample(b, "bioxen_vms_alive", num(m, "vms_alive"));
    family(b, "bioxen_peak_memory_bytes", "gauge", "Largest Lua heap a run ended with.");
    sample(b, "bioxen_peak_memory_bytes", num(m, "peak_mem_bytes"));
    family(b, "bioxen_uptime_seconds", "gauge", "Seconds since the manager started.");
    sample(b, "bioxen_uptime_seconds", num(m, "uptime_s"));
    family(b, "bioxen_execution_duration_seconds", "summary",
           "Duration of successful runs; quantiles over the last runs (see duration_window).");
    evbuffer_add_printf(b, "bioxen_execution_duration_seconds{quantile=\"0.5\"} %.17g\n",
                        num(m, "p50_ms") / 1e3);
    evbuffer_add_printf(b, "bioxen_execution_duration_seconds{quantile=\"0.99\"} %.17g\n",
                        num(m, "p99_ms") / 1e3);
    sample(b, "bioxen_execution_duration_seconds_sum", stats_totals.duration_sum_ms / 1e3);
    sample(b, "bioxen_execution_duration_seconds_count", (double)stats_totals.duration_count);
    json_decref(m);
}

/* Per-VM families; a value < 0 is not known (no stats request yet). */
enum { VF_HEAP, VF_PENDING, VF_EXEC, VF_ERR, VF_RESTARTS, VF_CPU, VF_RSS, VF_N };
static const struct { const char *name, *type, *help; } vm_fams[VF_N] = {
    {"bioxen_vm_heap_bytes", "gauge", "Lua heap of the VM after its last successful run."},
    {"bioxen_vm_pending", "gauge", "Requests queued or running on the VM."},
    {"bioxen_vm_executions_total", "counter", "Runs the VM finished."},
    {"bioxen_vm_errors_total", "counter", "Runs of the VM that failed."},
    {"bioxen_vm_restarts_total", "counter", "Times the VM's node was restarted."},
    {"bioxen_vm_cpu_seconds", "gauge", "CPU time of the VM's node as of its latest stats request."},
    {"bioxen_vm_rss_bytes", "gauge", "Resident memory of the VM's node as of its latest stats request."},
};

static void vm_values(const struct vm *vm, double v[VF_N])
{
    v[VF_HEAP] = (double)vm->st.heap_bytes;
    v[VF_PENDING] = (double)vm->npending;
    v[VF_EXEC] = (double)vm->st.executions;
    v[VF_ERR] = (double)vm->st.errors;
    v[VF_RESTARTS] = (double)vm->st.restarts;
    v[VF_CPU] = vm->st.cpu_ms < 0 ? -1 : vm->st.cpu_ms / 1e3;
    v[VF_RSS] = vm->st.rss_bytes;
}

static void vm_families(struct evbuffer *b)
{
    size_t n = 0;
    struct vm **all = registry_all(&n);
    double v[VF_N];
    for (int f = 0; f < VF_N; f++) {
        family(b, vm_fams[f].name, vm_fams[f].type, vm_fams[f].help);
        for (size_t i = 0; all && i < n; i++) {
            vm_values(all[i], v);
            if (v[f] >= 0)
                labelled(b, vm_fams[f].name, "vm", all[i]->name, v[f]);
        }
    }
    free(all);
}

static void metrics_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    manager_families(b);
    vm_families(b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void other_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, 404, "only /metrics is served here");
}

static int port_of(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int promhttp_start(struct event_base *base, const char *host, int port,
                   char *err, size_t errlen)
{
    http = evhttp_new(base);
    if (!http) {
        snprintf(err, errlen, "cannot set up the metrics HTTP server");
        return -1;
    }
    evhttp_set_timeout(http, HTTP_TIMEOUT_S);
    evhttp_set_max_headers_size(http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(http, HTTP_MAX_BODY);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port);
    if (!s || evhttp_set_cb(http, "/metrics", metrics_cb, NULL) < 0) {
        snprintf(err, errlen, "cannot listen for metrics on %s port %d", host, port);
        promhttp_stop();
        return -1;
    }
    evhttp_set_gencb(http, other_cb, NULL);
    bound_port = port_of(evhttp_bound_socket_get_fd(s));
    return 0;
}

int promhttp_port(void)
{
    return http ? bound_port : 0;
}

void promhttp_stop(void)
{
    if (http)
        evhttp_free(http);
    http = NULL;
    bound_port = 0;
}
