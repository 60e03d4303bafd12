/* procstat.h - what the node reads about its own process for op stats:
 * resident memory from /proc/self/statm, CPU time from getrusage. */
#ifndef BX_PROCSTAT_H
#define BX_PROCSTAT_H

/* Opens /proc/self/statm, once; done before isolation (a fully isolated
 * node may read the fds it holds but open nothing new). */
void procstat_open(void);
/* Resident set in bytes; 0 when statm is not open or unreadable. */
long long procstat_rss_bytes(void);
/* User + system CPU time of the process in ms. */
double procstat_cpu_ms(void);

#endif
