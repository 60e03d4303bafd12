/* emptyroot.h - a fully isolated node leaves the host's file tree for an
 * empty read-only root (emptyroot.c), the way bubblewrap and nsjail do. */
#ifndef BX_EMPTYROOT_H
#define BX_EMPTYROOT_H

#include <stddef.h>

/* Loads what the node still needs from the host's files (the time zone),
 * makes every mount of its mount namespace private, pivots / onto a fresh
 * empty read-only tmpfs and detaches the host's tree; then gives back the
 * capability the manager lent for this (spawn.c), unless the node is root
 * (the uid drop that follows clears its capabilities). Needs the mount
 * namespace made at spawn. 0, or -1 with err: the caller must not run code. */
int emptyroot_enter(char *err, size_t errlen);

#endif
