/* spawn.c - starts a bioxen-vmnode process, plainly or in fresh namespaces.
 *
 * A plain node is posix_spawn'd. A fully isolated one is started with
 * clone(CLONE_VM | CLONE_VFORK | namespaces): the same vfork-style start that
 * posix_spawn uses, so the manager's memory is not copied, plus new PID,
 * mount, IPC, UTS and (unless networked) network namespaces. A manager
 * without CAP_SYS_ADMIN adds a user namespace, the only way the kernel lets
 * it create the others, mapping its own uid and gid one to one, and lends
 * the node CAP_SYS_ADMIN there for the move into its empty root.
 * If the kernel refuses, the VM is not created: never a silent downgrade.
 * Both are the fallback: a node is normally forked by the zygote
 * (zygote.c), with the same namespaces; exec is used while there is none.
 * spawn_channel wraps any start in the socketpair and the cgroup. */
#include "spawn.h"
#include "cgroup.h"
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHILD_STACK (64 * 1024)

/* Shared with the vfork-style child, which reports its failure here. */
struct child {
    const char *path;
    char **argv;
    int fd;                 /* becomes the node's fd 3 */
    int userns;
    uid_t uid;
    gid_t gid;
    int err;                /* errno of the failed step, 0 on exec */
    const char *step;
};

static int setup_stdio(int fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
        return -1;
    if (null > 3)
        close(null);
    if (fd == 3)    /* dup2(3, 3) would leave FD_CLOEXEC set */
        return fcntl(3, F_SETFD, 0);
    return dup2(fd, 3) < 0 ? -1 : 0;
}

/* In a new user namespace the child maps itself: its outer uid and gid to
 * the same numbers inside, so files and /proc read the same as outside. */
static int write_map(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int map_ids(const struct child *c)
{
    char line[64];
    snprintf(line, sizeof line, "%u %u 1\n", (unsigned)c->uid, (unsigned)c->uid);
    if (write_map("/proc/self/uid_map", line) < 0)
        return -1;
    if (write_map("/proc/self/setgroups", "deny") < 0)
        return -1;
    snprintf(line, sizeof line, "%u %u 1\n", (unsigned)c->gid, (unsigned)c->gid);
    return write_map("/proc/self/gid_map", line);
}

/* In a user namespace the child holds every capability of that namespace,
 * but execve of a plain binary by a non-zero uid drops them all, and the
 * node needs CAP_SYS_ADMIN once, at init, to pivot into its empty root
 * (vmnode/emptyroot.c), which then gives it back. An ambient capability is
 * the one kind that survives execve: raise that one only. */
static int lend_sys_admin(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &hdr, d) < 0)
        return -1;
    d[CAP_TO_INDEX(CAP_SYS_ADMIN)].inheritable |= CAP_TO_MASK(CAP_SYS_ADMIN);
    if (syscall(SYS_capset, &hdr, d) < 0)
        return -1;
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0);
}

/* Runs in the child, on its own stack, sharing the manager's memory until
 * execve: only plain system calls here. */
static int child_main(void *arg)
{
    struct child *c = arg;
    sigset_t none;
    c->step = "map user namespace ids";
    if (c->userns && map_ids(c) < 0)
        goto fail;
    c->step = "keep CAP_SYS_ADMIN for the node's empty root";
    if (c->userns && lend_sys_admin() < 0)
        goto fail;
    c->step = "set up fds";
    if (setup_stdio(c->fd) < 0)
        goto fail;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    c->step = "exec";
    execve(c->path, c->argv, environ);
fail:
    c->err = errno ? errno : EINVAL;
    _exit(127);
}

static int spawn_plain(struct spawn_req *r, char **argv, pid_t *pid, char *err, size_t n)
{
    return spawn_exec(r->path, argv, NULL, r->fd, pid, err, n);
}

int spawn_exec(const char *path, char **argv, char **envp, int fd, pid_t *pid, char *err, size_t n)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t def, none;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);   /* we ignore it; the node should not inherit that */
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn(pid, path, &fa, &at, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0)
        snprintf(err, n, "spawn %s: %s", path, strerror(rc));
    return rc ? -1 : 0;
}

static void ns_names(int flags, char *out, size_t n)
{
    static const struct { int flag; const char *name; } ns[] = {
        {CLONE_NEWUSER, "user"}, {CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mount"},
        {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"}, {CLONE_NEWNET, "net"},
    };
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        if ((flags & ns[i].flag) && len < n)
            len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : "", ns[i].name);
}

/* The namespaces a node of r gets: none for a plain one. */
static int ns_flags(const struct spawn_req *r)
{
    if (!r->isolated)
        return 0;
    int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
    if (!r->networked)
        flags |= CLONE_NEWNET;
    if (geteuid() != 0)
        flags |= CLONE_NEWUSER;
    return flags;
}

static int spawn_isolated(struct spawn_req *r, char **argv, pid_t *pid, char *err, size_t n)
{
    int flags = ns_flags(r);
    struct child c = {r->path, argv, r->fd, !!(flags & CLONE_NEWUSER), getuid(), getgid(), 0, ""};
    char *stack = malloc(CHILD_STACK);
    if (!stack)
        return snprintf(err, n, "out of memory"), -1;
    sigset_t all, old;
    sigfillset(&all);
    /* a signal handler of ours must not run on the child's borrowed memory */
    sigprocmask(SIG_SETMASK, &all, &old);
    *pid = clone(child_main, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | flags | SIGCHLD, &c);
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(stack);
    char names[64];
    ns_names(flags, names, sizeof names);
    if (*pid < 0) {
        snprintf(err, n, "the kernel refused new %s namespaces: %s", names, strerror(e));
        return -1;
    }
    if (c.err) {
        waitpid(*pid, NULL, 0);
        snprintf(err, n, "isolated node: cannot %s: %s", c.step, strerror(c.err));
        return -1;
    }
    snprintf(r->out_ns, sizeof r->out_ns, "%s", names);
    return 0;
}

/* From the zygote: 0, -1 (refused), 1 (exec instead), -2 (lost, see spawn.h). */
static int spawn_forked(struct spawn_req *r, pid_t *pid, char *err, size_t n)
{
    int flags = ns_flags(r);
    /* A user namespace (unprivileged manager) only for exec'd nodes: a forked
     * child's memory stays owned by the zygote's user namespace (the kernel
     * sets that at exec), so with PR_SET_DUMPABLE 0 the manager's own user
     * could no longer read its /proc/<pid>/root, ns, ...; and its id maps
     * would be written from inside, where its uid is not known yet. */
    if (flags & CLONE_NEWUSER)
        return 1;
    int rc = zygote_fork(r->fd, r->procs, r->nprocs, flags, pid, err, n);
    if (rc == ZYGOTE_DOWN)
        return 1;
    if (rc == ZYGOTE_LOST)
        return -2;
    if (rc == ZYGOTE_REFUSED) {
        char names[64], why[200];
        ns_names(flags, names, sizeof names);
        snprintf(why, sizeof why, "%s", err);
        if (flags)
            snprintf(err, n, "the kernel refused new %s namespaces: %s", names, why);
        return -1;
    }
    ns_names(flags, r->out_ns, sizeof r->out_ns);
    r->out_joined = 1;
    return 0;
}

int spawn_node(struct spawn_req *r, pid_t *pid, char *err, size_t n)
{
    r->out_ns[0] = 0;
    r->out_joined = 0;
    int rc = spawn_forked(r, pid, err, n);
    if (rc <= 0)
        return rc;
    char parent[32];
    /* inside a PID namespace the node's parent is invisible (getppid is 0) */
    snprintf(parent, sizeof parent, "%d", r->isolated ? 0 : (int)getpid());
    char *argv[] = {(char *)r->path, "--fd", "3", "--parent", parent, NULL};
    return r->isolated ? spawn_isolated(r, argv, pid, err, n) : spawn_plain(r, argv, pid, err, n);
}

void spawn_discard(pid_t pid, int fd, unsigned seq)
{
    kill(pid, SIGKILL);
    if (fd >= 0)
        close(fd);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    cgroup_remove(seq);
}

/* spawn_node inside cgroup seq: no script ever runs outside it, because the
 * node waits for its init frame, which is sent only after the attach. */
static int spawn_in_cgroup(struct spawn_req *r, unsigned seq, unsigned long long heap,
                           pid_t *pid, char *err, size_t n)
{
    if (cgroup_prepare(seq, heap) < 0) {
        snprintf(err, n, "cannot make the VM's cgroup");
        return SPAWN_E_SETUP;
    }
    /* a forked node moves itself in (vmnode/zygote.c): the move is slow in
     * cgroup v1 and would stall the loop; an exec'd one is moved here */
    r->nprocs = cgroup_open_procs(seq, r->procs, (int)(sizeof r->procs / sizeof r->procs[0]));
    if (r->nprocs < 0) {
        cgroup_remove(seq);
        snprintf(err, n, "cannot open the VM's cgroup");
        return SPAWN_E_SETUP;
    }
    int rc = spawn_node(r, pid, err, n);
    for (int i = 0; i < r->nprocs; i++)
        close(r->procs[i]);
    r->nprocs = 0;
    if (rc < 0) {
        cgroup_remove(seq);
        return rc == -2 ? SPAWN_E_LOST : SPAWN_E_START;
    }
    if (!r->out_joined && cgroup_attach(seq, *pid) < 0) {
        spawn_discard(*pid, -1, seq);
        snprintf(err, n, "cannot move the node into its cgroup");
        return SPAWN_E_SETUP;
    }
    return SPAWN_OK;
}

static int spawn_channel_once(struct spawn_req *r, unsigned seq, unsigned long long heap,
                              int *fd, pid_t *pid, char *err, size_t n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, n, "socketpair: %s", strerror(errno));
        return SPAWN_E_SETUP;
    }
    if (sv[1] == 3) {   /* dup2(3, 3) would leave FD_CLOEXEC set */
        int d = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
        close(sv[1]);
        sv[1] = d;
    }
    int rc = SPAWN_E_SETUP;
    if (sv[1] < 0) {
        snprintf(err, n, "fcntl: %s", strerror(errno));
    } else {
        r->fd = sv[1];
        rc = spawn_in_cgroup(r, seq, heap, pid, err, n);
        close(sv[1]);   /* the node has its copy as fd 3 */
    }
    if (rc != SPAWN_OK)
        close(sv[0]);
    else
        *fd = sv[0];
    return rc;
}

int spawn_channel(struct spawn_req *r, unsigned seq, unsigned long long heap,
                  int *fd, pid_t *pid, char *err, size_t n)
{
    int rc = spawn_channel_once(r, seq, heap, fd, pid, err, n);
    /* The zygote died holding the request: a child of it may have the
     * node's end of that channel (it reads EOF now and exits). A new
     * channel, and exec, since the zygote is down until restarted. */
    if (rc == SPAWN_E_LOST)
        rc = spawn_channel_once(r, seq, heap, fd, pid, err, n);
    return rc == SPAWN_E_LOST ? SPAWN_E_SETUP : rc;
}
