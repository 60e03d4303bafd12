/* restart.c - what follows a node's death: a fresh node at once after a
 * limit kill (timeout, CPU, memory), and for a crash either the VM's end or,
 * with restart="on-crash", a fresh node after an Erlang-style back-off.
 * Owns vm->restarting/crashes/crash_since/restart_ev/held. */
#include "manager.h"
#include "timer.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* Restart at once-ish, back off while it keeps crashing, give up after
 * RESTART_MAX crashes within RESTART_WINDOW seconds. */
#define RESTART_WINDOW 60.0
#define RESTART_MAX 10
#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 5.0

/* A new node under the same name. 0, or -1 when none would start: then
 * the VM is gone. */
static int respawn(struct vm *vm)
{
    char err[256];
    if (node_spawn(vm, 0, NULL, err, sizeof err) == BX_OK)
        return 0;
    events_emit(vm, "VM_CRASH", json_pack("{s:s}", "reason", err));
    vm_destroy(vm, BX_E_VM_CRASHED, err);
    return -1;
}

/* ---- limit kills: a fresh node at once ---------------------------------- */

static void limit_message(struct vm *vm, enum bx_err reason, double t, char *msg, size_t n)
{
    json_t *mem = json_object_get(json_object_get(vm->init, "limits"), "memory_limit");
    if (reason == BX_E_TIMEOUT)
        snprintf(msg, n, "wall timeout of %gs exceeded; the VM was killed and restarted", t);
    else if (reason == BX_E_MEMORY_LIMIT)
        snprintf(msg, n, "the VM's cgroup ran out of memory (memory_limit %g bytes); "
                 "the kernel killed it and it was restarted", json_number_value(mem));
    else
        snprintf(msg, n, "CPU limit of %gs exceeded; the VM was killed and restarted",
                 vm->cpu_limit);
}

static void limit_event(struct vm *vm, enum bx_err reason, double t)
{
    json_t *mem = json_object_get(json_object_get(vm->init, "limits"), "memory_limit");
    if (reason == BX_E_TIMEOUT)
        events_emit(vm, "TIMEOUT", json_pack("{s:f, s:b}", "timeout", t, "killed", 1));
    else if (reason == BX_E_MEMORY_LIMIT)
        events_emit(vm, "MEM_KILL", json_pack("{s:O?, s:s}", "limit", mem, "by", "cgroup"));
    else
        events_emit(vm, "CPU_KILL", json_pack("{s:f}", "limit", vm->cpu_limit));
}

void restart_fresh(struct vm *vm, enum bx_err reason)
{
    char msg[160];
    double t = vm->head ? vm->head->timeout : vm->timeout;
    limit_message(vm, reason, t, msg, sizeof msg);
    vmreq_fail_all(vm, reason, msg, 1);
    node_detach(vm->node);
    limit_event(vm, reason, t);
    if (respawn(vm) < 0)
        return;
    events_emit(vm, "VM_RESTART", json_pack("{s:s, s:i}", "reason", bx_err_code(reason),
                                            "pid", (int)vm->node->pid));
}

/* ---- crashes: restart="on-crash" ---------------------------------------- */

static void restart_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct vm *vm = arg;
    vm->restarting = 0;
    if (respawn(vm) < 0)
        return;
    events_emit(vm, "VM_RESTART", json_pack("{s:s, s:i, s:i}", "reason", "VM_CRASHED",
                                            "pid", (int)vm->node->pid, "crashes", vm->crashes));
}

/* Schedules a fresh node after a back-off; requests that arrive meanwhile
 * wait in vm->held. 1 if so, 0 when the VM should go. */
static int backoff_start(struct vm *vm, const char *msg)
{
    if (!vm->restart_on_crash || vm->state != VM_READY || mgr->shutting_down)
        return 0;   /* a node that cannot even start would only crash again */
    double now = proto_now();
    if (now - vm->crash_since > RESTART_WINDOW)
        vm->crash_since = now, vm->crashes = 0;
    if (++vm->crashes > RESTART_MAX)
        return 0;
    if (!vm->restart_ev)
        vm->restart_ev = evtimer_new(mgr->base, restart_cb, vm);
    if (!vm->held)
        vm->held = evbuffer_new();
    if (!vm->restart_ev || !vm->held)
        return 0;
    vmreq_fail_all(vm, BX_E_VM_CRASHED, msg, 1);
    vm->restarting = 1;
    vm->state = VM_STARTING;
    timer_arm(vm->restart_ev, timer_backoff(BACKOFF_FIRST, (unsigned)vm->crashes, BACKOFF_MAX));
    return 1;
}

/* "VM node died of signal 9" and the like; a seccomp kill is also a
 * SECURITY_VIOLATION. */
static void crash_message(struct vm *vm, int status, char *msg, size_t n)
{
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
        snprintf(msg, n, "VM node was killed by seccomp: it made a forbidden system call");
        events_emit(vm, "SECURITY_VIOLATION", json_pack("{s:s, s:s}", "layer", "seccomp",
                                                        "what", "forbidden system call"));
    } else if (WIFSIGNALED(status)) {
        snprintf(msg, n, "VM node died of signal %d", WTERMSIG(status));
    } else {
        snprintf(msg, n, "VM node exited with status %d", WEXITSTATUS(status));
    }
}

void restart_crashed(struct vm *vm, int status)
{
    char msg[160];
    crash_message(vm, status, msg, sizeof msg);
    json_t *sig = WIFSIGNALED(status) ? json_integer(WTERMSIG(status)) : json_null();
    json_t *st = WIFSIGNALED(status) ? json_null() : json_integer(WEXITSTATUS(status));
    int again = vm->restart_on_crash && vm->state == VM_READY;
    events_emit(vm, "VM_CRASH", json_pack("{s:o, s:o, s:I, s:b}", "signal", sig, "status", st,
                                          "pending", (json_int_t)vm->npending, "restart", again));
    if (!backoff_start(vm, msg))
        vm_destroy(vm, BX_E_VM_CRASHED, msg);
}

void restart_forget(struct vm *vm)
{
    if (vm->restart_ev)
        event_free(vm->restart_ev);
    if (vm->held)
        evbuffer_free(vm->held);
    vm->restart_ev = NULL;
    vm->held = NULL;
}
