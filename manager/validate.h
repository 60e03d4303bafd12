/* validate.h - the manager's pure request checks: a parsed request in, an
 * error code and message out; no event loop, sockets or registry. Called by
 * router.c at the points where each check applies, and by
 * tests/fuzz/fuzz_request.c (req_check runs them all in router order). */
#ifndef BX_VALIDATE_H
#define BX_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "proto.h"

/* Index of a VM op (exec, call, exists, set_globals, get_global, reset,
 * stats, net_enable, get_state) or -1. Indexes 0 and 1 (exec, call) run code. */
int req_vm_op(const char *op);
#define REQ_VM_RUNS(k) ((k) <= 1)

/* id is an integer or string: BX_OK, else BAD_REQUEST (reply id null). */
enum bx_err req_check_id(json_t *req, char *err, size_t n);
/* Only an authed connection's cb_result for an integer callback goes on. */
int req_cb_result_ok(json_t *req);
/* stream_ack: vm a name, stream an integer or string, n (if present) a
 * non-negative integer, cancel (if present) a boolean. */
int req_stream_ack_ok(json_t *req);
/* 'vm' names a VM: the string, or NULL (BAD_REQUEST). */
const char *req_vm_name(json_t *req);
/* VM op k's required field and, for exec/call, the timeout,
 * instruction_limit and args overrides. */
enum bx_err req_check_vm_op(json_t *req, int k, char *err, size_t n);
/* create: the name, then the init frame built from req (a new reference in
 * *init, defaults filled in) and its limits, callbacks and flags. *init is
 * NULL unless BX_OK. */
enum bx_err req_check_create(json_t *req, json_t **init, char *err, size_t n);
/* Policy bounds: netlib.c keeps at most 64 tcp pairs of < 256 bytes. */
#define POLICY_TCP_MAX 64
#define POLICY_TCP_TEXT_MAX 255
#define POLICY_FS_MAX 256
#define POLICY_IMPORTS_MAX 256
/* A policy object checked and normalised: a new object with exactly mem
 * (integer or null), tcp, fs and imports (fresh lists), or NULL with err
 * set (BAD_REQUEST). Used by create (through req_check_create) and by
 * set_policy (policy.c). */
json_t *req_policy_normal(json_t *pol, char *err, size_t n);
/* set_policy: the VM name and the policy; BX_OK or BAD_REQUEST. */
enum bx_err req_check_set_policy(json_t *req, char *err, size_t n);
/* history: 'n' absent or null (REQ_HISTORY_DEFAULT) or an integer >= 0,
 * cut to REQ_HISTORY_MAX (the ring's size) in *count; else BAD_REQUEST. */
#define REQ_HISTORY_DEFAULT 100
#define REQ_HISTORY_MAX 1024
enum bx_err req_check_history(json_t *req, size_t *count, char *err, size_t n);
/* One limit value: 0, or -1 with err naming the field. */
int req_check_limit(const char *key, json_t *v, int is_float, char *err, size_t n);

/* Pool ops (poolcheck.c). pool_config: min/max (0..POOL_MAX_VMS, max >= 1,
 * min <= max), idle_timeout and limits; *cfg->init is the pool VMs' init
 * frame (a new reference) on BX_OK. run: an exec's fields without 'vm'. */
#define POOL_MAX_VMS 4096
struct pool_cfg { size_t min, max; double idle_timeout; json_t *init; };
enum bx_err req_check_pool_config(json_t *req, struct pool_cfg *cfg, char *err, size_t n);
enum bx_err req_check_run(json_t *req, char *err, size_t n);
int req_check_pool_op(const char *op, json_t *req, enum bx_err *e, char *err, size_t n);

/* Every check above, in the order router_dispatch applies them, for an
 * authenticated client of a manager that knows every VM name. */
enum bx_err req_check(json_t *req, char *err, size_t n);

#endif
