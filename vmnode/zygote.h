/* zygote.h - bioxen-vmnode --zygote (zygote.c): a node process that forks
 * the manager's new nodes instead of having each one exec'd. */
#ifndef BX_VMNODE_ZYGOTE_H
#define BX_VMNODE_ZYGOTE_H

/* Serves fork requests on ctl until the manager hangs up. Returns 1 in a
 * forked child, which is then a fresh node with its channel as fd 3 and no
 * other fd of the zygote's but 0-2; returns 0 in the zygote when it is to
 * exit, with the exit code in *code. */
int zygote_serve(int ctl, int *code);

#endif
