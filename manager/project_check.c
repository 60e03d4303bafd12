/* project_check.c - validation of create's "project" field (see
 * project_check.h). The node trusts what passes here: a path it could
 * never resolve, or a mock it cannot convert, is refused up front with a
 * message that names the entry. */
#include "project_check.h"
#include "pathcheck.h"

#include <stdio.h>
#include <string.h>

/* One path component: 1+ of A-Za-z0-9_.- and neither "." nor "..". */
static int component_ok(const char *s, size_t len)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!memchr(ok, s[i], sizeof ok - 1))
            return 0;
    return 1;
}

static const char *path_problem(const char *p, size_t len)
{
    if (strlen(p) != len || len > PROJECT_PATH_TEXT_MAX)
        return "must be at most 255 bytes without NUL";
    if (p[0] != '/')
        return "must be absolute (start with /)";
    if (len < 5 || strcmp(p + len - 4, ".lua") != 0)
        return "must end in .lua";
    for (const char *c = p + 1;;) {
        const char *slash = strchr(c, '/');
        size_t cl = slash ? (size_t)(slash - c) : strlen(c);
        if (!component_ok(c, cl))
            return "must be normalised: components of A-Za-z0-9_.- and no empty, . or .. ones";
        if (!slash)
            return NULL;
        c = slash + 1;
    }
}

static int check_files(json_t *files, char *err, size_t n)
{
    const char *path;
    json_t *src;
    size_t total = 0;
    if (!json_is_object(files) || json_object_size(files) > PROJECT_FILES_MAX) {
        snprintf(err, n, "project 'files' must be an object of at most %d paths", PROJECT_FILES_MAX);
        return -1;
    }
    json_object_foreach(files, path, src) {
        const char *why = path_problem(path, strlen(path));
        if (!why && !json_is_string(src))
            why = "must map to the module's source text (a string)";
        if (why) {
            snprintf(err, n, "project file '%.200s': %s", path, why);
            return -1;
        }
        total += json_string_length(src);
        if (total > PROJECT_BYTES_MAX) {
            snprintf(err, n, "project files exceed %zu bytes in total", PROJECT_BYTES_MAX);
            return -1;
        }
    }
    return 0;
}

/* A one-key object whose key starts with '$': a tag, checked by kind. */
static int tag_ok(const char *tag, json_t *v, int depth)
{
    if (strcmp(tag, "$f") == 0) {
        const char *s = json_string_value(v);
        return s && (!strcmp(s, "nan") || !strcmp(s, "inf") || !strcmp(s, "-inf"));
    }
    if (strcmp(tag, "$b") == 0) {
        const char *s = json_string_value(v);
        return s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
                        json_string_length(v);
    }
    if (strcmp(tag, "$map") != 0 || !json_is_array(v))
        return 0;
    size_t i;
    json_t *pair;
    json_array_foreach(v, i, pair) {
        if (!json_is_array(pair) || json_array_size(pair) != 2 ||
            json_is_null(json_array_get(pair, 0)) ||
            !project_value_ok(json_array_get(pair, 0), depth + 1) ||
            !project_value_ok(json_array_get(pair, 1), depth + 1))
            return 0;
    }
    return 1;
}

int project_value_ok(json_t *v, int depth)
{
    size_t i;
    json_t *item;
    const char *key;
    if (depth > 100)
        return 0;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            if (!project_value_ok(item, depth + 1))
                return 0;
        return 1;
    }
    if (!json_is_object(v))
        return 1;   /* null, booleans, numbers, strings */
    if (json_object_size(v) == 1) {
        json_object_foreach(v, key, item)
            if (key[0] == '$')
                return tag_ok(key, item, depth);
    }
    json_object_foreach(v, key, item)
        if (!project_value_ok(item, depth + 1))
            return 0;
    return 1;
}

static int check_mocks(json_t *mocks, char *err, size_t n)
{
    const char *name;
    json_t *v;
    if (!json_is_object(mocks) || json_object_size(mocks) > PROJECT_MOCKS_MAX) {
        snprintf(err, n, "project 'mocks' must be an object of at most %d modules", PROJECT_MOCKS_MAX);
        return -1;
    }
    json_object_foreach(mocks, name, v) {
        const char *why = !module_name_valid(name) ? "is not a module name like a.b_c"
                          : json_is_null(v) ? "cannot be null (a module value is never nil)"
                          : !project_value_ok(v, 0) ? "is not a value in the value encoding"
                          : NULL;
        if (why) {
            snprintf(err, n, "project mock '%.200s' %s", name, why);
            return -1;
        }
    }
    return 0;
}

int req_check_project(json_t *project, char *err, size_t n)
{
    const char *key;
    json_t *v;
    if (!project)
        return 0;
    if (!json_is_object(project) || !json_object_get(project, "files")) {
        snprintf(err, n, "'project' must be an object with \"files\" (and optional \"mocks\")");
        return -1;
    }
    json_object_foreach(project, key, v) {
        if (strcmp(key, "files") != 0 && strcmp(key, "mocks") != 0) {
            snprintf(err, n, "unknown project field '%.64s' (known: files, mocks)", key);
            return -1;
        }
    }
    json_t *mocks = json_object_get(project, "mocks");
    if (check_files(json_object_get(project, "files"), err, n) < 0 ||
        (mocks && check_mocks(mocks, err, n) < 0))
        return -1;
    return 0;
}
