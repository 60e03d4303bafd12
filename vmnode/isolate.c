/* isolate.c - the node's last steps before it runs anyone's code: drop to
 * the uid/gid it was given (supplementary groups cleared), forbid gaining
 * privileges, and, in full isolation, move into an empty root (emptyroot.c)
 * and lock itself into the seccomp allow-list (seccomp.c). The namespaces
 * were made by the manager at spawn.
 * Every step that was asked for either happens or init fails: a VM never
 * runs with less isolation than it was created with.
 * It is the last step of init, after the Lua state and LuaSocket are
 * loaded (they open files; nothing after this may). */
#include "node.h"
#include "emptyroot.h"
#include "netlib.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int id_field(json_t *req, const char *key, long long *out)
{
    json_t *v = json_object_get(req, key);
    *out = -1;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= 0xFFFFFFFFLL)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

/* setgroups, then gid, then uid (after the uid drop we could not change gid) */
static int drop_ids(long long uid, long long gid, char *err, size_t n)
{
    if (gid < 0)
        gid = uid >= 0 ? uid : -1;
    if (gid >= 0 && (setgroups(0, NULL) < 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0))
        return snprintf(err, n, "cannot drop to gid %lld (the manager must run as root): %s",
                        gid, strerror(errno)), -1;
    if (uid >= 0 && setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
        return snprintf(err, n, "cannot drop to uid %lld (the manager must run as root): %s",
                        uid, strerror(errno)), -1;
    uid_t r, e, s;
    if (uid >= 0 && (getresuid(&r, &e, &s) < 0 || r != (uid_t)uid || e != r || s != r))
        return snprintf(err, n, "uid drop did not take"), -1;
    return 0;
}

enum bx_err isolate_apply(bx_node *n, json_t *req, char *err, size_t errlen)
{
    long long uid, gid;
    json_t *full = json_object_get(req, "full_isolation");
    if (id_field(req, "uid", &uid) < 0 || id_field(req, "gid", &gid) < 0 ||
        (full && !json_is_boolean(full)))
        return snprintf(err, errlen, "bad isolation fields"), BX_E_BAD_REQUEST;
    n->full_isolation = json_is_true(full);
    if (n->full_isolation && emptyroot_enter(err, errlen) < 0)  /* before the uid drop: it mounts */
        return BX_E_ISOLATION;
    if ((uid >= 0 || gid >= 0) && drop_ids(uid, gid, err, errlen) < 0)
        return BX_E_ISOLATION;
    /* a credential change clears the parent-death signal: set it again */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return snprintf(err, errlen, "prctl: %s", strerror(errno)), BX_E_ISOLATION;
    if (!n->full_isolation)
        return BX_OK;
    /* no core dumps, no ptrace from processes of the same uid */
    if (prctl(PR_SET_DUMPABLE, 0) < 0)
        return snprintf(err, errlen, "prctl(PR_SET_DUMPABLE): %s", strerror(errno)), BX_E_ISOLATION;
    netlib_seal();
    /* the test build may leave seccomp off to prove the other layers alone */
    if (testhooks_skip_seccomp && testhooks_skip_seccomp())
        return BX_OK;
    if (seccomp_lock(n->networked, err, errlen) < 0)
        return BX_E_ISOLATION;
    return BX_OK;
}
