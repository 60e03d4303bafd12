/* project.h - the node's side of issue 6's multi-file projects and user
 * sessions: the REPL-style expression loader of exec's "expr" field, the
 * project's files and mocks that require() resolves (policy.c), and the
 * get_state op (globals the user created). docs/protocol.md "Projects". */
#ifndef BX_VMNODE_PROJECT_H
#define BX_VMNODE_PROJECT_H

#include "node.h"

/* Loads code as a text chunk. With expr, first as "return " .. code (like
 * lua.c's REPL); when that is not valid Lua, as code itself, so a syntax
 * error reports on the original text. Returns a lua_load status. */
int project_load_chunk(lua_State *L, const char *code, size_t len, const char *chunkname,
                       int expr);

/* Keeps the init frame's "project" ({"files": {path: source}, "mocks":
 * {name: value}}; checked by the manager). 0, or -1 with err set. */
int project_configure(json_t *project, char *err, size_t errlen);
/* True when the VM was created with a project. */
int project_active(void);
/* Fills the table on top of the stack (the registry's bioxen.preload) with
 * the mocks as Lua values. Needs protection (allocates). */
void project_register_mocks(lua_State *L);
/* The project file module `name` resolves to ("a.b": "/a/b.lua", then
 * "/a/b/init.lua"): 1 with its source and path (static storage), else 0. */
int project_find(const char *name, const char **src, size_t *len, const char **path);

/* Records the state's global names and values as the sandbox made them
 * (end of the build; needs protection). */
void project_baseline(lua_State *L);
/* The get_state op: {name: value} of the globals that are not the
 * sandbox's own, data only (functions, userdata and threads skipped). */
json_t *project_op_get_state(bx_node *n, json_t *req, json_t *id);

#endif
