/* modmatch.h - does an import grant cover a module name? Shared by the
 * manager (policy.c serves module files) and the node (policy.c's
 * require), so both ends of a require agree. Pure, fuzzed by fuzz_policy. */
#ifndef BX_MODMATCH_H
#define BX_MODMATCH_H

/* 1 when grant covers name: an exact module name ("mylib.a") covers only
 * itself; a family "mylib.*" (as IsoBox grants "@scope/" and all below) covers every name below
 * mylib ("mylib.a", "mylib.a.b") but neither "mylib" itself nor "mylibx".
 * A name holding '*' is covered by nothing. NULL-safe. */
int modmatch(const char *grant, const char *name);

/* 1 when grant ends in ".*" (a family), else 0. */
int modmatch_is_family(const char *grant);

#endif
