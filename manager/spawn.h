/* spawn.h - starting node processes, plainly or in new namespaces (spawn.c). */
#ifndef BX_SPAWN_H
#define BX_SPAWN_H

#include <sys/types.h>

struct spawn_req {
    const char *path;       /* bioxen-vmnode */
    int fd;                 /* the node's end of the channel, becomes its fd 3 */
    int isolated;           /* full isolation: new namespaces */
    int networked;          /* keep the host's network namespace */
    char out_ns[64];        /* filled: the namespaces made, "pid,mount,..." */
};

/* 0 with *pid, or -1 with err (the node was not started). */
int spawn_node(struct spawn_req *r, pid_t *pid, char *err, size_t n);

#endif
