/* emptyroot.c - the last look a fully isolated node has at the host's
 * files (see emptyroot.h). Seccomp already forbids open, but one gap in an
 * allow-list is enough; with / an empty read-only tmpfs and the host's
 * tree detached, such a gap finds no file at all, and /proc/<pid>/root
 * shows an empty directory from outside. Runs in the node's own mount
 * namespace, so nothing here is seen by the host or by other nodes.
 * It runs at init after LuaSocket and /proc/self/statm are loaded (the
 * node opens nothing afterwards) and before the uid drop. */
#include "emptyroot.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Directories tried as the new root's mount point: any will do, it is
 * covered by the tmpfs only inside this mount namespace. */
static const char *const mount_points[] = {"/tmp", "/mnt", "/proc"};

static int fail(char *err, size_t n, const char *step)
{
    snprintf(err, n, "cannot give the node an empty root: %s: %s", step, strerror(errno));
    return -1;
}

/* A tmpfs with nothing in it, read-only from the start: nobody ever
 * writes there, not even us. */
static int mount_empty(char *err, size_t n)
{
    const unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    for (size_t i = 0; i < sizeof mount_points / sizeof mount_points[0]; i++) {
        if (mount("bioxen-empty", mount_points[i], "tmpfs", flags, "size=4k,mode=0555") == 0)
            return chdir(mount_points[i]) < 0 ? fail(err, n, "chdir") : 0;
        if (errno != ENOENT && errno != ENOTDIR)
            break;
    }
    return fail(err, n, "mount tmpfs");
}

/* The capability spawn.c raised as ambient for a node in a user namespace
 * (execve would have dropped it otherwise) is needed no more. */
static int give_back_caps(char *err, size_t n)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    if (getuid() == 0)
        return 0;   /* root: the uid drop that follows clears them */
    memset(none, 0, sizeof none);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return fail(err, n, "clear ambient capabilities");
    if (syscall(SYS_capset, &hdr, none) < 0)
        return fail(err, n, "capset");
    return 0;
}

int emptyroot_enter(char *err, size_t errlen)
{
    /* os.date reads /etc/localtime on first use: load it while it is there
     * (glibc keeps it until TZ changes, and it cannot) */
    tzset();
    /* our mounts must not propagate back to the host's namespace */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail(err, errlen, "make mounts private");
    if (mount_empty(err, errlen) < 0)
        return -1;
    /* pivot_root(".", "."): the old root ends up stacked on the new one at
     * ".", and a lazy unmount of "." takes the whole host tree away */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return fail(err, errlen, "pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        return fail(err, errlen, "detach the host's root");
    if (chdir("/") < 0)
        return fail(err, errlen, "chdir /");
    return give_back_caps(err, errlen);
}
