/* cgroupint.h - what cgroup.c (memory, pids) and cgroupcpu.c (cpu) share.
 * Internal to those two files. */
#ifndef BX_CGROUPINT_H
#define BX_CGROUPINT_H

#include <stddef.h>

/* Writes val into dir/file, retrying EINTR (the reaper's SIGCHLD). 0 or -1
 * with errno. */
int cg_write_file(const char *dir, const char *file, const char *val);
/* <root><the manager's own path in hierarchy ctl>/bioxen.<pid> into out,
 * made by nobody yet. 0, or -1 with why set. */
int cg_base_path(const char *root, const char *ctl, char *out, size_t n, char *why, size_t wn);
/* Creates <root><the manager's own path in hierarchy ctl>/bioxen.<pid>
 * (ctl NULL: the v2 tree) into out, after sweeping the directories of dead
 * managers there. 0, or -1 with why set. */
int cg_make_base(const char *root, const char *ctl, char *out, size_t n, char *why, size_t wn);

/* cgroupcpu.c, driven by cgroup.c: v2base is the v2 bioxen.<pid> directory
 * (cgroup.c made it for memory and pids; NULL on v1), off the reason the
 * other controllers are unusable (NULL: they are in use). */
void cgcpu_init(const char *v2base, const char *off);
void cgcpu_remove(unsigned seq);
void cgcpu_fini(void);

#endif
