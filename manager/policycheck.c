/* policycheck.c - the pure rules of a policy object (docs/protocol.md
 * "Policy"): normal form, "host:port" grants, fs globs, module names and
 * their bounds, for create (with the older allow_tcp merged in) and for
 * set_policy. The file-system side of a grant is policy.c's. */
#include "ops.h"
#include "modmatch.h"
#include "pathcheck.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "host:port" as netlib.c compares it: a host of printable characters and
 * a decimal port 0..65535 after the last ':'. */
static int tcp_entry_ok(json_t *v)
{
    const char *s = req_plain_string(v);
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || strlen(s) > POLICY_TCP_TEXT_MAX)
        return 0;
    for (const char *p = s; p < colon; p++)
        if (*p <= ' ' || *p > '~')
            return 0;
    size_t pl = strlen(colon + 1);
    if (pl == 0 || pl > 5 || strspn(colon + 1, "0123456789") != pl)
        return 0;
    return atol(colon + 1) <= 65535;
}

/* An absolute glob without ".." that does not aim at /proc, /sys, /dev. */
static int fs_glob_ok(json_t *v, const char **why)
{
    const char *s = req_plain_string(v);
    char norm[PATH_TEXT_MAX + 1];
    if (!s) {
        *why = "must be a string without NUL bytes";
        return 0;
    }
    if (path_normalise(s, norm, sizeof norm, why) < 0)
        return 0;
    if (path_in_kernel_area(norm)) {
        *why = "aims at /proc, /sys or /dev, which are never readable";
        return 0;
    }
    return 1;
}

/* A module name, or a family of them: a name then ".*" (modmatch.h). */
static int module_ok(json_t *v)
{
    const char *s = req_plain_string(v);
    if (s && modmatch_is_family(s)) {
        char stem[MODULE_NAME_MAX + 1];
        size_t n = strlen(s) - 2;
        if (n >= sizeof stem)
            return 0;
        memcpy(stem, s, n);
        stem[n] = 0;
        return module_name_valid(stem);
    }
    return s && module_name_valid(s);
}

/* A list field of the policy: an array of at most max items, each passing
 * its check. 0, or -1 with err set. */
static int check_list(json_t *pol, const char *key, size_t max, char *err, size_t n)
{
    json_t *list = json_object_get(pol, key), *v;
    size_t i;
    if (!json_is_array(list) || json_array_size(list) > max) {
        snprintf(err, n, "policy '%s' must be a list of at most %zu strings", key, max);
        return -1;
    }
    json_array_foreach(list, i, v) {
        const char *why = NULL, *s = json_is_string(v) ? json_string_value(v) : "(not a string)";
        if (strcmp(key, "tcp") == 0 && !tcp_entry_ok(v))
            why = "must be \"host:port\" (port 0-65535)";
        else if (strcmp(key, "fs") == 0 && !fs_glob_ok(v, &why))
            ;
        else if (strcmp(key, "imports") == 0 && !module_ok(v))
            why = "must be a module name like a.b_c (letters, digits, _ and dots), or a family a.b.*";
        if (why) {
            snprintf(err, n, "policy %s entry %.200s: %s", key, s, why);
            return -1;
        }
    }
    return 0;
}

json_t *req_policy_normal(json_t *pol, char *err, size_t n)
{
    static const char *const keys[] = {"mem", "tcp", "fs", "imports"};
    const char *key;
    json_t *v;
    if (!json_is_object(pol)) {
        snprintf(err, n, "'policy' must be an object with mem, tcp, fs and imports");
        return NULL;
    }
    json_object_foreach(pol, key, v) {
        size_t i = 0;
        while (i < 4 && strcmp(keys[i], key) != 0)
            i++;
        if (i == 4) {
            snprintf(err, n, "unknown policy field '%.64s' (known: mem, tcp, fs, imports)", key);
            return NULL;
        }
    }
    json_t *mem = json_object_get(pol, "mem");
    if (mem && !json_is_null(mem) && (!json_is_integer(mem) || json_integer_value(mem) < 0)) {
        snprintf(err, n, "policy 'mem' must be null or a non-negative integer (bytes)");
        return NULL;
    }
    json_t *out = json_pack("{s:O, s:[], s:[], s:[]}", "mem", mem ? mem : json_null(),
                            "tcp", "fs", "imports");
    if (!out) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    for (int i = 1; i < 4; i++)
        if (json_object_get(pol, keys[i]))
            json_object_set(out, keys[i], json_object_get(pol, keys[i]));
    if (check_list(out, "tcp", POLICY_TCP_MAX, err, n) < 0 ||
        check_list(out, "fs", POLICY_FS_MAX, err, n) < 0 ||
        check_list(out, "imports", POLICY_IMPORTS_MAX, err, n) < 0) {
        json_decref(out);
        return NULL;
    }
    /* copies, so the caller owns every list it may extend */
    for (int i = 1; i < 4; i++)
        json_object_set_new(out, keys[i], json_copy(json_object_get(out, keys[i])));
    return out;
}

/* create: "policy" normalised, the older "allow_tcp" merged into its tcp
 * list, and policy.mem made the effective memory_limit. 0 or -1. */
int req_create_policy(json_t *in, char *err, size_t n)
{
    json_t *pol = json_object_get(in, "policy"), *allow = json_object_get(in, "allow_tcp");
    if (!pol && !allow)
        return 0;
    if (allow && !json_is_array(allow)) {
        snprintf(err, n, "'allow_tcp' must be a list of \"host:port\" strings");
        return -1;
    }
    json_t *empty = json_object();
    json_t *norm = req_policy_normal(pol ? pol : empty, err, n);
    json_decref(empty);
    if (!norm)
        return -1;
    if (allow && (json_array_extend(json_object_get(norm, "tcp"), allow) < 0 ||
                  check_list(norm, "tcp", POLICY_TCP_MAX, err, n) < 0)) {
        json_decref(norm);
        return -1;
    }
    json_t *mem = json_object_get(norm, "mem");
    if (json_is_integer(mem))
        json_object_set(json_object_get(in, "limits"), "memory_limit", mem);
    json_object_del(in, "allow_tcp");
    json_object_set_new(in, "policy", norm);
    return 0;
}

enum bx_err opcheck_set_policy(json_t *req, struct op_args *a, char *err, size_t n)
{
    if (req_need_vm(req, err, n) != BX_OK)
        return BX_E_BAD_REQUEST;
    a->policy = req_policy_normal(json_object_get(req, "policy"), err, n);
    return a->policy ? BX_OK : BX_E_BAD_REQUEST;
}

/* The severity table of docs/security.md. Only the manager's own "layer"
 * (seccomp, set by restart.c) is critical among layers: nodeframe.c drops
 * any layer a node sends, so a node cannot raise its own events. */
const char *security_severity(const char *layer, const char *action, const char *reason)
{
    const char *r = reason ? reason : "";
    if (layer && strcmp(layer, "seccomp") == 0)
        return "critical";          /* the kernel killed the node */
    if (!action)
        return "warn";
    if (strcmp(action, "fs_read") == 0)     /* probing the host's kernel files */
        return strstr(r, "/proc, /sys") ? "critical" : "error";
    if (strcmp(action, "require") == 0)     /* a module path escaping its directory */
        return strstr(r, "outside the module directory") ? "error" : "warn";
    if (strcmp(action, "listen") == 0)
        return "info";              /* listen before bind: a mistake, nothing left the VM */
    if (strcmp(action, "setoption") == 0 || strstr(r, "a name is looked up only"))
        return "warn";              /* nothing was reached or resolved */
    return "error";                 /* a connect/send/bind beyond the grants */
}
