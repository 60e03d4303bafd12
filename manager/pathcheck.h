/* pathcheck.h - the pure rules of the policy's file grants: path
 * normalisation, the areas never served, glob matching and module names.
 * No I/O (realpath and open live in policy.c), so the fuzzer runs exactly
 * the code the manager runs (one of the pure checks of bxcheck). */
#ifndef BX_PATHCHECK_H
#define BX_PATHCHECK_H

#include <jansson.h>
#include <stddef.h>

#define PATH_TEXT_MAX 4096      /* longest path or glob accepted */
#define MODULE_NAME_MAX 255

/* Normalises an absolute path into out: repeated slashes and "." components
 * collapse, a trailing slash goes. Refuses (returns -1, *why set) a path
 * that is empty, relative, longer than PATH_TEXT_MAX or has a ".."
 * component. 0 on success; out then starts with '/' and never ends in one
 * (except "/" itself). */
int path_normalise(const char *in, char *out, size_t n, const char **why);
/* True when p (normalised) is /proc, /sys, /dev or below one of them. */
int path_in_kernel_area(const char *p);
/* True when p matches one of the glob strings of the array globs
 * (fnmatch with FNM_PATHNAME: '*' never crosses a '/'). */
int path_glob_match(json_t *globs, const char *p);
/* Every check that needs no file system: normalise (into norm), refuse
 * kernel areas and paths no glob matches. 0, or -1 with *why set. */
int path_check_literal(json_t *globs, const char *in, char *norm, size_t n,
                       const char **why);
/* True when p (normalised, absolute) is dir or below it. */
int path_inside(const char *dir, const char *p);

/* True when name matches ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$
 * and is at most MODULE_NAME_MAX bytes. */
int module_name_valid(const char *name);
/* "a.b" -> "a/b.lua" into out; -1 when the name is invalid or too long. */
int module_rel_path(const char *name, char *out, size_t n);

#endif
