/* cgroup.c - one cgroup per node process, so that the kernel, not only the
 * node's own allocator and rlimits, bounds a VM's memory and process count.
 * Works with cgroup v1 (one hierarchy per controller, as on these machines)
 * and v2 (one unified tree). Best effort: when the host offers no writable
 * cgroups the manager says why once, and the rlimits remain the backstop.
 *
 * Layout: <the manager's own cgroup>/bioxen.<manager pid>/n<seq>. The cpu
 * controller, for VMs with a cpu_share only, is cgroupcpu.c's (the same
 * layout in the v1 cpu hierarchy; the same n<seq> on v2). */
#include "cgroup.h"
#include "cgroupint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"
#define CG_PIDS_MAX "4"     /* the node is one thread; sanitizer runtimes add one */

enum { CG_MEM, CG_PIDS, CG_N };

static struct {
    int version;                 /* 0: none, 1 or 2 */
    char base[CG_N][PATH_MAX - 32];  /* our bioxen.<pid> directories (v2: the same) */
    char why[160];               /* why there are none */
} cg;

static const char *const v1_ctl[CG_N] = {"memory", "pids"};

int cg_write_file(const char *dir, const char *file, const char *val)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd, tries = 0;
    while ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 && errno == EINTR && ++tries < 100)
        ;
    if (fd < 0)
        return -1;
    /* SIGCHLD (the reaper's handler) interrupts these writes now and then */
    ssize_t w;
    while ((w = write(fd, val, strlen(val))) < 0 && errno == EINTR && ++tries < 100)
        ;
    int e = errno;
    close(fd);
    errno = e;
    return w == (ssize_t)strlen(val) ? 0 : -1;
}

/* 1 when ctl is one of the comma-separated controllers in list: a v1
 * hierarchy may carry several ("cpu,cpuacct"). */
static int has_ctl(const char *list, const char *ctl)
{
    size_t k = strlen(ctl);
    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, ctl, k) == 0 && (p[k] == 0 || p[k] == ','))
            return 1;
    return 0;
}

/* The manager's own cgroup path in one hierarchy, from /proc/self/cgroup:
 * "N:memory:/path" for v1, "0::/path" for v2 (ctl NULL). */
static int own_path(const char *ctl, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[PATH_MAX + 64];
    int found = -1;
    while (f && found < 0 && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = 0;
        b[strcspn(b + 1, "\n") + 1] = 0;
        int match = ctl ? has_ctl(a + 1, ctl) : (a[1] == 0 && strncmp(line, "0:", 2) == 0);
        if (match && strlen(b + 1) < n) {
            snprintf(out, n, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
            found = 0;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* Removes bioxen.<pid> directories left by managers that were SIGKILLed. */
static void sweep_stale(const char *parent)
{
    DIR *d = opendir(parent);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid;
        char end;
        if (sscanf(e->d_name, "bioxen.%ld%c", &pid, &end) != 1 || pid == getpid() ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char dir[PATH_MAX];
        if ((size_t)snprintf(dir, sizeof dir, "%s/%s", parent, e->d_name) >= sizeof dir)
            continue;
        DIR *sub = opendir(dir);
        struct dirent *s;
        while (sub && (s = readdir(sub))) {
            char child[PATH_MAX + 256];
            if ((size_t)snprintf(child, sizeof child, "%s/%s", dir, s->d_name) < sizeof child &&
                s->d_name[0] == 'n')
                rmdir(child);   /* fails, harmlessly, while a process is inside */
        }
        if (sub)
            closedir(sub);
        rmdir(dir);
    }
    if (d)
        closedir(d);
}

int cg_base_path(const char *root, const char *ctl, char *out, size_t n, char *why, size_t wn)
{
    char own[PATH_MAX - 64];
    if (own_path(ctl, own, sizeof own) < 0)
        return snprintf(why, wn, "not in a %s cgroup", ctl ? ctl : "v2"), -1;
    if ((size_t)snprintf(out, n, "%s%s/bioxen.%d", root, own, (int)getpid()) >= n)
        return snprintf(why, wn, "cgroup path too long"), -1;
    return 0;
}

int cg_make_base(const char *root, const char *ctl, char *out, size_t n, char *why, size_t wn)
{
    char parent[PATH_MAX];
    if (cg_base_path(root, ctl, out, n, why, wn) < 0)
        return -1;
    snprintf(parent, sizeof parent, "%s", out);
    *strrchr(parent, '/') = 0;      /* cg_base_path ends it in "/bioxen.<pid>" */
    sweep_stale(parent);
    if (mkdir(out, 0755) < 0 && errno != EEXIST)
        return snprintf(why, wn, "mkdir %.100s: %s", out, strerror(errno)), -1;
    return 0;
}

static int make_base(const char *root, const char *ctl, char *out, size_t n)
{
    return cg_make_base(root, ctl, out, n, cg.why, sizeof cg.why);
}

static int init_v1(void)
{
    for (int i = 0; i < CG_N; i++) {
        char root[64];
        snprintf(root, sizeof root, CG_ROOT "/%s", v1_ctl[i]);
        if (make_base(root, v1_ctl[i], cg.base[i], sizeof cg.base[i]) < 0)
            return -1;
    }
    return 0;
}

static int init_v2(void)
{
    char own[PATH_MAX - 64], parent[PATH_MAX];
    if (own_path(NULL, own, sizeof own) < 0)
        return snprintf(cg.why, sizeof cg.why, "not in a v2 cgroup"), -1;
    snprintf(parent, sizeof parent, CG_ROOT "%s", own);
    /* the kernel refuses this unless our own cgroup may delegate them */
    if (cg_write_file(parent, "cgroup.subtree_control", "+memory +pids") < 0 && errno != EEXIST)
        return snprintf(cg.why, sizeof cg.why, "cannot delegate memory+pids below %.80s: %s",
                        parent, strerror(errno)), -1;
    if (make_base(CG_ROOT, NULL, cg.base[CG_MEM], sizeof cg.base[CG_MEM]) < 0 ||
        cg_write_file(cg.base[CG_MEM], "cgroup.subtree_control", "+memory +pids") < 0)
        return snprintf(cg.why, sizeof cg.why, "cannot enable memory+pids in %.80s: %s",
                        cg.base[CG_MEM], strerror(errno)), -1;
    snprintf(cg.base[CG_PIDS], sizeof cg.base[CG_PIDS], "%s", cg.base[CG_MEM]);
    return 0;
}

int cgroup_init(void)
{
    struct stat st;
    if (stat(CG_ROOT "/memory/cgroup.procs", &st) == 0 && stat(CG_ROOT "/pids/cgroup.procs", &st) == 0)
        cg.version = init_v1() == 0 ? 1 : 0;
    else if (stat(CG_ROOT "/cgroup.controllers", &st) == 0)
        cg.version = init_v2() == 0 ? 2 : 0;
    else
        snprintf(cg.why, sizeof cg.why, "no memory and pids cgroup controllers mounted");
    /* the cpu controller is only for VMs with a cpu_share (cgroupcpu.c) */
    cgcpu_init(cg.version == 2 ? cg.base[CG_MEM] : NULL, cg.version ? NULL : cg.why);
    return cg.version;
}

const char *cgroup_unavailable(void)
{
    return cg.version ? NULL : cg.why;
}

/* base[] is at most PATH_MAX - 32 long (make_base): "/n<seq>" always fits */
static void node_dir(int ctl, unsigned seq, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s/n%u", cg.base[ctl], seq) >= n)
        out[0] = 0;
}

/* Memory for the node beyond its Lua heap: the interpreter, Jansson's
 * buffers, captured output, page tables. */
#if defined(__SANITIZE_ADDRESS__)
#define CG_SLACK (1ULL << 30)   /* a sanitizer build's node: ASan's quarantine and shadow */
#else
#define CG_SLACK (32ULL << 20)
#endif

static unsigned long long mem_bound(unsigned long long heap)
{
    return heap + heap / 4 + CG_SLACK;
}

int cgroup_prepare(unsigned seq, unsigned long long heap_limit)
{
    char dir[PATH_MAX], val[32];
    for (int i = 0; cg.version && i < (cg.version == 1 ? CG_N : 1); i++) {
        node_dir(i, seq, dir, sizeof dir);
        int rc, tries = 0;
        while ((rc = mkdir(dir, 0755)) < 0 && errno == EINTR && ++tries < 100)
            ;
        if (rc < 0 && errno != EEXIST)
            goto fail;
        int mem = cg.version == 2 || i == CG_MEM, pids = cg.version == 2 || i == CG_PIDS;
        snprintf(val, sizeof val, "%llu", mem_bound(heap_limit));
        if (mem && heap_limit) {
            if (cg_write_file(dir, cg.version == 1 ? "memory.limit_in_bytes" : "memory.max", val) < 0)
                goto fail;
            /* no swapping out of the limit (the file exists only with swap accounting) */
            cg_write_file(dir, cg.version == 1 ? "memory.memsw.limit_in_bytes" : "memory.swap.max",
                       cg.version == 1 ? val : "0");
        }
        if (pids && cg_write_file(dir, "pids.max", CG_PIDS_MAX) < 0)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "bioxen-manager: cgroup for node %u: %s\n", seq, strerror(errno));
    cgroup_remove(seq);
    return -1;
}

int cgroup_attach(unsigned seq, pid_t pid)
{
    char dir[PATH_MAX], val[24];
    snprintf(val, sizeof val, "%d", (int)pid);
    for (int i = 0; cg.version && i < (cg.version == 1 ? CG_N : 1); i++) {
        node_dir(i, seq, dir, sizeof dir);
        if (cg_write_file(dir, "cgroup.procs", val) < 0) {
            fprintf(stderr, "bioxen-manager: cgroup for node %u: %s\n", seq, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int cgroup_open_procs(unsigned seq, int *fds, int max)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    int k = 0;
    for (int i = 0; cg.version && i < (cg.version == 1 ? CG_N : 1); i++) {
        node_dir(i, seq, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        int fd = k < max ? open(path, O_WRONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            while (k > 0)
                close(fds[--k]);
            return -1;
        }
        fds[k++] = fd;
    }
    return k;
}

int cgroup_oom_killed(unsigned seq)
{
    if (!cg.version)
        return 0;
    char dir[PATH_MAX], path[PATH_MAX + 32], buf[512];
    node_dir(CG_MEM, seq, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, cg.version == 1 ? "memory.oom_control" : "memory.events");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *k = strstr(buf, "oom_kill ");
    return k && atol(k + 9) > 0;
}

void cgroup_remove(unsigned seq)
{
    char dir[PATH_MAX];
    cgcpu_remove(seq);
    for (int i = 0; cg.version && i < (cg.version == 1 ? CG_N : 1); i++) {
        node_dir(i, seq, dir, sizeof dir);
        for (int tries = 0; rmdir(dir) < 0 && errno == EINTR && tries < 100; tries++)
            ;
    }
}

void cgroup_fini(void)
{
    cgcpu_fini();
    for (int i = 0; cg.version && i < (cg.version == 1 ? CG_N : 1); i++)
        rmdir(cg.base[i]);
    cg.version = 0;
}
