/* project_check.h - the manager's checks of issue 6's project field of
 * create ({"files": {path: source}, "mocks": {name: value}}; docs/
 * protocol.md "Projects"). Pure, so tests/fuzz/fuzz_request.c runs exactly
 * this code (part of create's check). */
#ifndef BX_PROJECT_CHECK_H
#define BX_PROJECT_CHECK_H

#include <jansson.h>
#include <stddef.h>

#define PROJECT_FILES_MAX 1024              /* files in one project */
#define PROJECT_BYTES_MAX ((size_t)8 << 20) /* their sources together */
#define PROJECT_PATH_TEXT_MAX 255           /* one file's path */
#define PROJECT_MOCKS_MAX 256

/* Checks project (may be NULL: no project): an object with "files" (each
 * path absolute, normalised, components of A-Za-z0-9_.- without "." or
 * "..", ending in ".lua"; each source a string) and optional "mocks"
 * (module names; values in the value encoding, not null). 0, or -1 with
 * err set (BAD_REQUEST). */
int req_check_project(json_t *project, char *err, size_t n);

/* True when v is a valid value in the wire's value encoding (tags $f, $b,
 * $map; depth at most 100) that Lua can receive. */
int project_value_ok(json_t *v, int depth);

#endif
