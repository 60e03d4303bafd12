/* spawn.h - starting node processes, plainly or in new namespaces, each
 * with its channel and in its cgroup (spawn.c). */
#ifndef BX_SPAWN_H
#define BX_SPAWN_H

#include <sys/types.h>

struct spawn_req {
    const char *path;       /* bioxen-vmnode */
    int fd;                 /* the node's end of the channel, becomes its fd 3 */
    int isolated;           /* full isolation: new namespaces */
    int networked;          /* keep the host's network namespace */
    char out_ns[64];        /* filled: the namespaces made, "pid,mount,..." */
    int procs[4];           /* the cgroup's cgroup.procs files (spawn_channel's) */
    int nprocs;
    int out_joined;         /* filled: the node moves itself into its cgroup */
};

/* Forked by the zygote, or exec'd while there is none: 0 with *pid, -1
 * with err (the node was not started), or -2: the zygote died with the
 * request, and a child of it may hold r->fd (start over on a new channel). */
int spawn_node(struct spawn_req *r, pid_t *pid, char *err, size_t n);
/* posix_spawn of path with fd as its fd 3 and /dev/null as 0 and 1, and
 * envp (NULL: ours). */
int spawn_exec(const char *path, char **argv, char **envp, int fd, pid_t *pid, char *err, size_t n);

enum { SPAWN_OK = 0, SPAWN_E_SETUP = -1, SPAWN_E_START = -2, SPAWN_E_LOST = -3 };
/* The one way a node is started, fresh or as a spare: a socketpair (the
 * node's end becomes its fd 3, r->fd is set), cgroup seq bounded for heap
 * bytes, spawn_node, then the move into the cgroup. SPAWN_OK with *fd (the
 * manager's end, the caller's from now on) and *pid; else SPAWN_E_START
 * (spawn_node refused) or SPAWN_E_SETUP, with err and nothing left behind. */
int spawn_channel(struct spawn_req *r, unsigned seq, unsigned long long heap,
                  int *fd, pid_t *pid, char *err, size_t n);
/* Undoes spawn_channel for a node no pid table knows: SIGKILL, close fd
 * (-1: none), wait for it (quick: it never ran a script), remove its cgroup. */
void spawn_discard(pid_t pid, int fd, unsigned seq);

#endif
