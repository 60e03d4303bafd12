/* cgroupcpu.c - the cgroup cpu controller, for VMs created with a cpu_share:
 * a CFS bandwidth quota of share * period per period, so that a busy VM is
 * throttled (made to wait for the next period) instead of killed.
 *
 * cgroup v1 (these machines): the "cpu" hierarchy is a tree of its own, so
 * each such node gets <cpu root><own path>/bioxen.<pid>/n<seq> there,
 * cpu.cfs_period_us and cpu.cfs_quota_us written before the node is moved
 * in. Nodes without a share never get a directory here, and a manager
 * that never sees a share never makes its bioxen.<pid> there (the first
 * share does): a manager put in a cpu cgroup of someone else's (the bench's
 * cpucgroup.py) leaves nothing behind in it, even if it is SIGKILLed.
 * cgroup v2: one tree; cgroup.c's n<seq> directory is the node's, and the
 * cpu controller is enabled for it through the same delegation as memory
 * and pids (+cpu in subtree_control of our parent and of bioxen.<pid>);
 * the quota is "QUOTA PERIOD" in cpu.max. Without +cpu delegated the
 * controller is unavailable, and so is every cpu_share.
 *
 * Both are read back from cpu.stat (cputhrottle.c). */
#include "cgroup.h"
#include "cgroupint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_ROOT "/sys/fs/cgroup"
#define CPU_PERIOD_US 100000    /* the kernel's default period: 100 ms */
#define CPU_QUOTA_MIN_US 1000   /* the kernel refuses a quota under 1 ms */

static struct {
    int version;                /* 0: unavailable, 1 or 2 */
    int made;                   /* v1: base exists (made at the first share) */
    char base[PATH_MAX - 32];   /* v1: our bioxen.<pid> in the cpu hierarchy; v2: cgroup.c's */
    char why[200];
} cc = {0, 0, "", "cgroups are off (--no-cgroups)"};

const char *cgroup_cpu_unavailable(void)
{
    return cc.version ? NULL : cc.why;
}

/* v2: +cpu for bioxen.<pid> (in our parent) and for its n<seq> children. */
static int init_v2(const char *base)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", base);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = 0;
    if (cg_write_file(parent, "cgroup.subtree_control", "+cpu") < 0 ||
        cg_write_file(base, "cgroup.subtree_control", "+cpu") < 0)
        return snprintf(cc.why, sizeof cc.why, "cannot delegate the cpu controller below %.80s: %s",
                        parent, strerror(errno)), -1;
    snprintf(cc.base, sizeof cc.base, "%s", base);
    return 0;
}

/* v1: where bioxen.<pid> will be, and whether we may make it there. */
static int init_v1(void)
{
    char parent[PATH_MAX];
    if (cg_base_path(CG_ROOT "/cpu", "cpu", cc.base, sizeof cc.base, cc.why, sizeof cc.why) < 0)
        return -1;
    snprintf(parent, sizeof parent, "%s", cc.base);
    *strrchr(parent, '/') = 0;
    if (access(parent, W_OK) < 0)
        return snprintf(cc.why, sizeof cc.why, "cannot make cpu cgroups in %.120s: %s",
                        parent, strerror(errno)), -1;
    return 0;
}

/* v1: bioxen.<pid> at the first share; a failure makes the controller
 * unavailable from then on, with the reason. */
static int make_v1_base(void)
{
    if (cc.made)
        return 0;
    if (cg_make_base(CG_ROOT "/cpu", "cpu", cc.base, sizeof cc.base, cc.why, sizeof cc.why) < 0) {
        cc.version = 0;
        return -1;
    }
    cc.made = 1;
    return 0;
}

void cgcpu_init(const char *v2base, const char *off)
{
    struct stat st;
    cc.version = 0;
    if (v2base)
        cc.version = init_v2(v2base) == 0 ? 2 : 0;
    else if (stat(CG_ROOT "/cpu/cpu.cfs_quota_us", &st) == 0)   /* also "cpu,cpuacct" via its link */
        cc.version = init_v1() == 0 ? 1 : 0;
    else
        snprintf(cc.why, sizeof cc.why, "no cgroup cpu controller: %s",
                 off ? off : "no v1 cpu hierarchy mounted");
}

static void node_dir(unsigned seq, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s/n%u", cc.base, seq) >= n)
        out[0] = 0;
}

/* share CPUs as a quota per CPU_PERIOD_US (validate.c bounds share). */
static long long quota_us(double share)
{
    long long q = (long long)(share * CPU_PERIOD_US + 0.5);
    return q < CPU_QUOTA_MIN_US ? CPU_QUOTA_MIN_US : q;
}

static int attach_v1(const char *dir, pid_t pid, double share, const char **step)
{
    char val[32];
    int rc, tries = 0;
    *step = "mkdir";
    while ((rc = mkdir(dir, 0755)) < 0 && errno == EINTR && ++tries < 100)
        ;
    if (rc < 0 && errno != EEXIST)
        return -1;
    *step = "cpu.cfs_period_us";
    snprintf(val, sizeof val, "%d", CPU_PERIOD_US);
    if (cg_write_file(dir, "cpu.cfs_period_us", val) < 0)
        return -1;
    *step = "cpu.cfs_quota_us";
    snprintf(val, sizeof val, "%lld", quota_us(share));
    if (cg_write_file(dir, "cpu.cfs_quota_us", val) < 0)
        return -1;
    *step = "cgroup.procs";
    snprintf(val, sizeof val, "%d", (int)pid);
    return cg_write_file(dir, "cgroup.procs", val);
}

int cgroup_cpu_attach(unsigned seq, pid_t pid, double share, char *err, size_t n)
{
    char dir[PATH_MAX], val[48];
    const char *step = "cpu.max";
    if (!cc.version || (cc.version == 1 && make_v1_base() < 0))
        return snprintf(err, n, "the cgroup cpu controller is unavailable: %s", cc.why), -1;
    node_dir(seq, dir, sizeof dir);
    int rc;
    if (cc.version == 1) {
        rc = attach_v1(dir, pid, share, &step);
    } else {
        /* the node is in n<seq> already (cgroup_attach): only the quota */
        snprintf(val, sizeof val, "%lld %d", quota_us(share), CPU_PERIOD_US);
        rc = cg_write_file(dir, "cpu.max", val);
    }
    if (rc == 0)
        return 0;
    int e = errno;
    /* v1 refuses a quota above what the cgroups above allow (a manager run
     * inside a bounded cpu cgroup): say so, the errno alone does not */
    snprintf(err, n, "cannot put the VM under a cpu quota of %g CPUs (%s in %.120s): %s%s",
             share, step, dir, strerror(e),
             e == EINVAL ? " (more than the manager's own cpu cgroup allows?)" : "");
    cgcpu_remove(seq);
    return -1;
}

/* cpu.stat: v1 "throttled_time NS", v2 "throttled_usec US"; both
 * "nr_throttled N". */
int cgroup_cpu_stat(unsigned seq, unsigned long long *throttled_ns, unsigned long long *nr)
{
    char dir[PATH_MAX], path[PATH_MAX + 16], buf[1024];
    if (!cc.version)
        return -1;
    node_dir(seq, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cpu.stat", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t len = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (len <= 0)
        return -1;
    buf[len] = 0;
    int found = 0;
    *throttled_ns = *nr = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char key[32];
        unsigned long long v;
        if (sscanf(line, "%31s %llu", key, &v) != 2)
            continue;
        if (strcmp(key, "nr_throttled") == 0)
            *nr = v, found |= 1;
        else if (strcmp(key, "throttled_time") == 0)
            *throttled_ns = v, found |= 2;
        else if (strcmp(key, "throttled_usec") == 0)
            *throttled_ns = v * 1000, found |= 2;
    }
    return found == 3 ? 0 : -1;
}

void cgcpu_remove(unsigned seq)
{
    char dir[PATH_MAX];
    if (cc.version != 1 || !cc.made)
        return;     /* v2: the directory is cgroup.c's, removed there */
    node_dir(seq, dir, sizeof dir);
    /* ENOENT for the nodes that had no share: harmless */
    for (int tries = 0; rmdir(dir) < 0 && errno == EINTR && tries < 100; tries++)
        ;
}

void cgcpu_fini(void)
{
    if (cc.version == 1 && cc.made)
        rmdir(cc.base);
    cc.version = cc.made = 0;
}
