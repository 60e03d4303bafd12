/* procstat.c - the node's own resident memory and CPU time (see
 * procstat.h). The statm fd is held from before isolation on. */
#include "procstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static int statm_fd = -1;

void procstat_open(void)
{
    if (statm_fd < 0)
        statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
}

long long procstat_rss_bytes(void)
{
    char buf[128];
    long long size = 0, rss = 0;
    ssize_t k = statm_fd >= 0 ? pread(statm_fd, buf, sizeof buf - 1, 0) : -1;
    if (k <= 0)
        return 0;
    buf[k] = 0;
    if (sscanf(buf, "%lld %lld", &size, &rss) != 2)
        rss = 0;
    return rss * sysconf(_SC_PAGESIZE);
}

double procstat_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}
