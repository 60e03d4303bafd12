/* validate.h - the manager's pure request checks: a parsed request in, an
 * error code and message out; no event loop, sockets or registry. The
 * per-op checks (opcheck_*) are named in ops.def and declared in ops.h;
 * this header has the pieces several files share, and req_check, which
 * judges a whole request as router_dispatch does (the request fuzzer). */
#ifndef BX_VALIDATE_H
#define BX_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "proto.h"

/* id is an integer or string: BX_OK, else BAD_REQUEST (reply id null). */
enum bx_err req_check_id(json_t *req, char *err, size_t n);
/* Only an authed connection's cb_result for an integer callback goes on. */
int req_cb_result_ok(json_t *req);
/* stream_ack: vm a name, stream an integer or string, n (if present) a
 * non-negative integer, cancel (if present) a boolean. */
int req_stream_ack_ok(json_t *req);
/* The C string of a JSON string without NUL bytes, else NULL: a name with
 * a NUL would silently stand for its prefix. */
const char *req_plain_string(json_t *v);
/* 'vm' names a VM: the string, or NULL (BAD_REQUEST). */
const char *req_vm_name(json_t *req);
/* The same as an op's check: BX_OK, or BAD_REQUEST with err set. */
enum bx_err req_need_vm(json_t *req, char *err, size_t n);
/* exec/call/run overrides: timeout, instruction_limit, args, expr and (only
 * where stream_ok) stream. BX_OK or BAD_REQUEST. */
enum bx_err req_check_run_fields(json_t *req, int stream_ok, char *err, size_t n);
/* "filename" (1..BX_FILENAME_MAX bytes, no control characters; not with
 * "chunkname") and "context" (an object). BX_OK or BAD_REQUEST. */
enum bx_err req_check_run_names(json_t *req, char *err, size_t n);
/* SECURITY_VIOLATION's "severity" (info, warn, error, critical) from what
 * was attempted: the event's layer, action and reason (each may be NULL).
 * Never NULL. policycheck.c. */
const char *security_severity(const char *layer, const char *action, const char *reason);
/* The filename rule alone: 1, or 0 with why set. */
int req_filename_ok(const char *s, size_t len, const char **why);
/* create: the name, then the init frame built from req (a new reference in
 * *init, defaults filled in) and its limits, callbacks and flags. *init is
 * NULL unless BX_OK. */
enum bx_err req_check_create(json_t *req, json_t **init, char *err, size_t n);
/* create's cpu_share bounds (validate.c): the kernel's smallest quota, and
 * more CPUs than any host has. */
#define REQ_CPU_SHARE_MIN 0.01
#define REQ_CPU_SHARE_MAX 4096.0
/* Policy bounds: netlib.c keeps at most 64 tcp pairs of < 256 bytes. */
#define POLICY_TCP_MAX 64
#define POLICY_TCP_TEXT_MAX 255
#define POLICY_FS_MAX 256
#define POLICY_IMPORTS_MAX 256
/* Policy rules (policycheck.c). A policy object checked and normalised: a
 * new object with exactly mem (integer or null), tcp, fs and imports (fresh
 * lists), or NULL with err set (BAD_REQUEST). */
json_t *req_policy_normal(json_t *pol, char *err, size_t n);
/* create's init in progress: "policy" normalised, the older "allow_tcp"
 * merged into its tcp list, policy.mem made the effective memory_limit
 * (in "limits", which must exist). 0, or -1 with err set. */
int req_create_policy(json_t *in, char *err, size_t n);
/* history: 'n' absent or null (REQ_HISTORY_DEFAULT) or an integer >= 0,
 * cut to REQ_HISTORY_MAX (the ring's size). */
#define REQ_HISTORY_DEFAULT 100
#define REQ_HISTORY_MAX 1024
/* One limit value: 0, or -1 with err naming the field. */
int req_check_limit(const char *key, json_t *v, int is_float, char *err, size_t n);

/* Pool ops (poolcheck.c). pool_config: min/max (0..POOL_MAX_VMS, max >= 1,
 * min <= max), idle_timeout and limits; *cfg->init is the pool VMs' init
 * frame (a new reference) on BX_OK. run: an exec's fields without 'vm'. */
#define POOL_MAX_VMS 4096
struct pool_cfg { size_t min, max; double idle_timeout; json_t *init; };
enum bx_err req_check_pool_config(json_t *req, struct pool_cfg *cfg, char *err, size_t n);
enum bx_err req_check_run(json_t *req, char *err, size_t n);

/* A whole request as router_dispatch judges it before any state is looked
 * at (for an authenticated client): the NOREPLY ops first (always BX_OK,
 * err says "dropped" if so), then the id, the op's name and its check from
 * the op table. */
enum bx_err req_check(json_t *req, char *err, size_t n);

#endif
