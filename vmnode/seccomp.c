/* seccomp.c - the system calls a fully isolated node may still make.
 *
 * An allow-list, built with libseccomp: anything not listed kills the whole
 * process (SIGSYS), as do calls through another ABI (i386's int 0x80, x32).
 * What is left is what a running node needs: reading and writing the fds it
 * already holds, memory (never executable: no new code can be mapped), its
 * timers and signals, the clock. No open, no exec, no fork or clone, no
 * ptrace, no kill. Networked VMs also get TCP/IP sockets (AF_INET/AF_INET6
 * only); which addresses they reach is netlib.c's policy. Installed once,
 * at the end of init. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

static const int always[] = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
    SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
    SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(fcntl),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall),
    SCMP_SYS(setitimer), SCMP_SYS(getitimer), SCMP_SYS(alarm),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday),
    SCMP_SYS(time), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrusage), SCMP_SYS(uname),
    SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
    SCMP_SYS(futex), SCMP_SYS(getrandom), SCMP_SYS(sched_yield),
    SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* TCP/IP for networked VMs (socket itself is checked below) */
static const int net[] = {
    SCMP_SYS(connect), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept),
    SCMP_SYS(accept4), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(shutdown),
};

#ifdef BX_ASAN
/* What the sanitizer runtime needs to write a report and check for leaks at
 * exit. Only in sanitizer builds; the kill tests use calls not listed here. */
static const int sanitizer[] = {
    SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
    SCMP_SYS(getdents64), SCMP_SYS(clone), SCMP_SYS(ptrace), SCMP_SYS(wait4),
    SCMP_SYS(prctl), SCMP_SYS(sched_getaffinity), SCMP_SYS(getppid),
    SCMP_SYS(set_robust_list), SCMP_SYS(getpriority), SCMP_SYS(tgkill),
};
#endif

static int allow_all(scmp_filter_ctx ctx, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0) < 0)
            return -1;
    return 0;
}

/* Rules with argument checks. */
static int allow_checked(scmp_filter_ctx ctx, int networked)
{
    /* memory, but never executable */
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0)
        return -1;
    /* getrlimit (glibc asks with prlimit64), never setting one */
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
                         SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0)) < 0)
        return -1;
    /* glibc's fstat(fd) is newfstatat(fd, "", AT_EMPTY_PATH) */
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                         SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH)) < 0)
        return -1;
    if (!networked)
        return 0;
    for (int fam = 0; fam < 2; fam++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, fam ? AF_INET6 : AF_INET)) < 0)
            return -1;
    return allow_all(ctx, net, sizeof net / sizeof net[0]);
}

int seccomp_lock(int networked, char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return snprintf(err, errlen, "seccomp_init failed"), -1;
    /* calls from a foreign ABI kill too (the native arch is the only one) */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = allow_all(ctx, always, sizeof always / sizeof always[0]);
#ifdef BX_ASAN
    if (rc == 0)
        rc = allow_all(ctx, sanitizer, sizeof sanitizer / sizeof sanitizer[0]);
#endif
    if (rc == 0)
        rc = allow_checked(ctx, networked);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0)
        snprintf(err, errlen, "cannot install the seccomp filter: %s", strerror(-rc));
    return rc < 0 ? -1 : 0;
}
