/* pathcheck.c - pure path and module-name rules of the policy (see
 * pathcheck.h). Every function is total on any NUL-terminated input. */
#include "pathcheck.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

int path_normalise(const char *in, char *out, size_t n, const char **why)
{
    size_t len = strlen(in), o = 0;
    if (len == 0 || in[0] != '/') {
        *why = "the path must be absolute";
        return -1;
    }
    if (len > PATH_TEXT_MAX || n < 2) {
        *why = "the path is too long";
        return -1;
    }
    out[o++] = '/';
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t cl = end ? (size_t)(end - p) : strlen(p);
        if (cl == 0)
            break;
        if (cl == 2 && p[0] == '.' && p[1] == '.') {
            *why = "'..' is not allowed in a path";
            return -1;
        }
        if (!(cl == 1 && p[0] == '.')) {
            if (o + (o > 1) + cl + 1 > n) {
                *why = "the path is too long";
                return -1;
            }
            if (o > 1)
                out[o++] = '/';
            memcpy(out + o, p, cl);
            o += cl;
        }
        p += cl;
    }
    out[o] = 0;
    return 0;
}

static int under(const char *p, const char *top)
{
    size_t l = strlen(top);
    return strncmp(p, top, l) == 0 && (p[l] == 0 || p[l] == '/');
}

int path_in_kernel_area(const char *p)
{
    return under(p, "/proc") || under(p, "/sys") || under(p, "/dev");
}

int path_glob_match(json_t *globs, const char *p)
{
    size_t i;
    json_t *g;
    json_array_foreach(globs, i, g) {
        const char *s = json_string_value(g);
        if (s && fnmatch(s, p, FNM_PATHNAME) == 0)
            return 1;
    }
    return 0;
}

int path_check_literal(json_t *globs, const char *in, char *norm, size_t n,
                       const char **why)
{
    if (path_normalise(in, norm, n, why) < 0)
        return -1;
    if (path_in_kernel_area(norm)) {
        *why = "/proc, /sys and /dev are never readable";
        return -1;
    }
    if (!path_glob_match(globs, norm)) {
        *why = "no allow_fs grant matches the path";
        return -1;
    }
    return 0;
}

int path_inside(const char *dir, const char *p)
{
    if (strcmp(dir, "/") == 0)
        return p[0] == '/';
    return under(p, dir);
}

static int ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int ident_char(char c)
{
    return ident_start(c) || (c >= '0' && c <= '9');
}

int module_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > MODULE_NAME_MAX)
        return 0;
    int at_start = 1;
    for (const char *p = name; *p; p++) {
        if (at_start) {
            if (!ident_start(*p))
                return 0;
            at_start = 0;
        } else if (*p == '.') {
            at_start = 1;
        } else if (!ident_char(*p)) {
            return 0;
        }
    }
    return !at_start;
}

int module_rel_path(const char *name, char *out, size_t n)
{
    if (!module_name_valid(name) || strlen(name) + 5 > n)
        return -1;
    size_t i = 0;
    for (; name[i]; i++)
        out[i] = name[i] == '.' ? '/' : name[i];
    memcpy(out + i, ".lua", 5);
    return 0;
}
