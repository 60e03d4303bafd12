/* policy.c - serves a VM's file grants and swaps its policy (policy.h).
 *
 * A node asks {"ask":K,"fs_read":PATH} or {"ask":K,"module":NAME}; the
 * answer {"answer":K,"result":BYTES} or {"answer":K,"error":{...}} goes
 * back at once (the read is synchronous: files are bounded). Every refusal
 * is a POLICY_VIOLATION answer plus a SECURITY_VIOLATION event. The pure
 * path rules are pathcheck.c's; this file does the file-system side:
 * realpath, the symlink comparison, and an open that cannot follow links. */
#include "policy.h"
#include "ops.h"
#include "pathcheck.h"
#include "modmatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "frame.h"

static char *module_dir;        /* realpath of --module-dir, or NULL */

int policy_set_module_dir(const char *dir, char *err, size_t n)
{
    struct stat st;
    char *real = realpath(dir, NULL);
    if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, n, "--module-dir %s: %s", dir, real ? "not a directory" : strerror(errno));
        free(real);
        return -1;
    }
    free(module_dir);
    module_dir = real;
    return 0;
}

void policy_free(void)
{
    free(module_dir);
    module_dir = NULL;
}

/* Largest file served: half a node frame, so even base64 of it fits. */
static size_t read_max(void)
{
    size_t f = mgr->max_frame < BX_FRAME_MAX_DEFAULT ? mgr->max_frame : BX_FRAME_MAX_DEFAULT;
    return f / 2;
}

/* ---- answers -------------------------------------------------------------- */

typedef struct ask {
    struct vm *vm;
    json_int_t k;
    const char *action;         /* "fs_read" or "require", for events */
    const char *target;
} ask;

static void send_frame(struct vm *vm, json_t *msg, size_t *len_out)
{
    size_t len = 0;
    char *buf = proto_dump(msg, &len);
    *len_out = buf ? len : 0;
    if (buf && len <= BX_FRAME_MAX_DEFAULT && vm->node && vm->node->chan) {
        bufferevent_write(vm->node->chan, buf, len);
        flush_mark(vm->node->chan, &vm->node->dirty);
    }
    free(buf);
}

static void answer_error(ask *a, enum bx_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void answer_error(ask *a, enum bx_err code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    json_t *r = json_pack("{s:I, s:{s:s, s:s}}", "answer", a->k, "error",
                          "code", bx_err_code(code), "message", msg);
    if (r)
        send_frame(a->vm, r, &len);
    json_decref(r);
}

/* A refusal: the answer, then the event (the node raises PolicyViolation). */
static void refuse(ask *a, const char *why)
{
    answer_error(a, BX_E_POLICY_VIOLATION, "%s '%.1000s' refused: %s",
                 strcmp(a->action, "fs_read") == 0 ? "fs.read" : "require", a->target, why);
    events_emit(a->vm, "SECURITY_VIOLATION", json_pack("{s:s, s:s, s:s}", "action", a->action,
                                                       "target", a->target, "reason", why));
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* The bytes as the value encoding wants them: a JSON string when they are
 * UTF-8 (and escaping keeps the frame small enough), else {"$b": base64}. */
static void answer_bytes(ask *a, const char *buf, size_t len)
{
    size_t sent = 0;
    json_t *s = json_stringn(buf, len);   /* NULL when not UTF-8 */
    json_t *r = s ? json_pack("{s:I, s:o}", "answer", a->k, "result", s) : NULL;
    if (r)
        send_frame(a->vm, r, &sent);
    json_decref(r);
    if (sent && sent <= BX_FRAME_MAX_DEFAULT)
        return;
    char *b = base64((const unsigned char *)buf, len);
    r = b ? json_pack("{s:I, s:{s:s}}", "answer", a->k, "result", "$b", b) : NULL;
    free(b);
    if (r)
        send_frame(a->vm, r, &sent);
    else
        answer_error(a, BX_E_INTERNAL, "out of memory");
    json_decref(r);
}

/* ---- reading -------------------------------------------------------------- */

/* open(2) that refuses a symlink in any component (openat2 where the
 * kernel has it, else O_NOFOLLOW on the last one: the realpath check
 * before covers the rest but for a race). */
static int open_no_links(const char *path)
{
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
#ifdef SYS_openat2
    struct open_how how = { .flags = (unsigned long long)flags,
                            .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return (int)fd;
#endif
    return open(path, flags);
}

/* Reads the regular file at path (no links) and answers with its bytes. */
static void serve_file(ask *a, const char *path)
{
    size_t max = read_max();
    int fd = open_no_links(path);
    if (fd < 0) {
        if (errno == ELOOP)
            return refuse(a, "the path goes through a symbolic link");
        return answer_error(a, BX_E_LUA_ERROR, "cannot read '%.1000s': %s", a->target, strerror(errno));
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(a, "not a regular file");
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return answer_error(a, BX_E_LUA_ERROR, "'%.1000s' is %lld bytes, over the %zu-byte limit of one read",
                            a->target, (long long)st.st_size, max);
    }
    size_t len = 0;
    ssize_t got = 1;
    /* the size may change under us: read at most max + 1 bytes */
    buf = malloc(max + 1);
    while (buf && len <= max && (got = read(fd, buf + len, max + 1 - len)) > 0)
        len += (size_t)got;
    int rerr = errno;
    close(fd);
    if (!buf)
        answer_error(a, BX_E_INTERNAL, "out of memory");
    else if (got < 0)
        answer_error(a, BX_E_LUA_ERROR, "cannot read '%.1000s': %s", a->target, strerror(rerr));
    else if (len > max)
        answer_error(a, BX_E_LUA_ERROR, "'%.1000s' grew over the %zu-byte limit of one read", a->target, max);
    else
        answer_bytes(a, buf, len);
    free(buf);
}

static json_t *policy_list(struct vm *vm, const char *key)
{
    return json_object_get(json_object_get(vm->init, "policy"), key);
}

static void ask_fs_read(ask *a, const char *path)
{
    char norm[PATH_TEXT_MAX + 1];
    const char *why;
    if (path_check_literal(policy_list(a->vm, "fs"), path, norm, sizeof norm, &why) < 0)
        return refuse(a, why);
    char *real = realpath(norm, NULL);
    if (!real)
        return answer_error(a, BX_E_LUA_ERROR, "cannot read '%.1000s': %s", path, strerror(errno));
    int same = strcmp(real, norm) == 0;
    free(real);
    if (!same)
        return refuse(a, "the path goes through a symbolic link");
    serve_file(a, norm);
}

static int listed(json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (json_is_string(v) && modmatch(json_string_value(v), name))
            return 1;
    return 0;
}

static void ask_module(ask *a, const char *name)
{
    char rel[MODULE_NAME_MAX + 8], full[PATH_MAX + MODULE_NAME_MAX + 16];
    if (!listed(policy_list(a->vm, "imports"), name))
        return refuse(a, "not in the policy's imports");
    if (!module_dir || module_rel_path(name, rel, sizeof rel) < 0)
        return answer_error(a, BX_E_LUA_ERROR, "module '%s' not found", name);
    snprintf(full, sizeof full, "%s/%s", module_dir, rel);
    char *real = realpath(full, NULL);
    if (!real)
        return answer_error(a, BX_E_LUA_ERROR, "module '%s' not found", name);
    if (!path_inside(module_dir, real)) {
        free(real);
        return refuse(a, "the module's file lies outside the module directory");
    }
    serve_file(a, real);
    free(real);
}

int policy_node_frame(struct vm *vm, json_t *msg)
{
    json_t *k = json_object_get(msg, "ask");
    if (!k)
        return 0;
    if (!json_is_integer(k))
        return 1;   /* nothing to answer it with: the node's wait times out */
    json_t *path = json_object_get(msg, "fs_read"), *mod = json_object_get(msg, "module");
    const char *target = json_string_value(path ? path : mod);
    ask a = { vm, json_integer_value(k), path ? "fs_read" : "require", target };
    if (!target || strlen(target) != json_string_length(path ? path : mod))
        answer_error(&a, BX_E_BAD_REQUEST, "an ask needs a string fs_read or module");
    else if (path)
        ask_fs_read(&a, target);
    else
        ask_module(&a, target);
    return 1;
}

/* ---- set_policy ----------------------------------------------------------- */

/* x->vm resolved by the router, x->a.policy normalised by its check. */
void policy_op_set_policy(struct op_ctx *x)
{
    struct vm *vm = x->vm;
    json_t *norm = x->a.policy;
    json_t *frame = json_pack("{s:s, s:O}", "op", "set_policy", "policy", norm);
    if (!frame)
        return client_send_new(x->c, proto_error_new(x->id, BX_E_INTERNAL, "out of memory"));
    /* the manager's half applies now (fs, imports; kept for restarts), the
     * node's (tcp, memory, imports) before its next request */
    json_object_set(vm->init, "policy", norm);
    if (json_is_integer(json_object_get(norm, "mem")))
        json_object_set(json_object_get(vm->init, "limits"), "memory_limit", json_object_get(norm, "mem"));
    events_emit(vm, "POLICY_HOTLOAD", json_deep_copy(norm));
    if (vmreq_send(vm, frame, x->c->id, x->id, PEND_OTHER, 0) < 0)
        client_send_new(x->c, proto_error_new(x->id, BX_E_INTERNAL, "out of memory"));
    json_decref(frame);
}
