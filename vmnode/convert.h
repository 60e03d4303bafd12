/* convert.h - Lua values <-> JSON values, as docs/protocol.md "Values" says:
 * lua2json.c one way, json2lua.c the other (textcodec.c their strings).
 *
 * Both directions walk with an explicit stack (no C recursion follows the
 * input's depth), refuse cycles, nesting past BX_VALUE_DEPTH_MAX and Lua
 * values over BX_VALUE_BYTES_MAX of JSON, and never crash on any input. */
#ifndef BX_CONVERT_H
#define BX_CONVERT_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

#include "proto.h"

/* A table shared many times over (t = {t, t}, 60 times) would expand to
 * 2^60 JSON values in C, beyond every Lua limit. So a value is refused when
 * it has more values than the Lua heap has 16-byte slots (no tree can), or
 * when its JSON text would certainly exceed this: no frame that large could
 * reach the manager (FRAME_MAX defaults to 16 MiB). The fuzz build lowers
 * it to stay fast. */
#ifndef BX_VALUE_BYTES_MAX
#define BX_VALUE_BYTES_MAX ((size_t)16 << 20)
#endif

/* The three JSON shapes of a Lua table (the Values table): a JSON array
 * (a sequence), a JSON object (string keys), a {"$map": [[k, v], ...]}. */
enum { K_ARRAY, K_OBJECT, K_MAP };

/* A JSON array with nulls becomes a Lua table with holes, whose border
 * (#t) no longer says how long the array was. json2lua.c notes that length
 * in a weak-keyed table in the registry under this key's address (no mark
 * on the table itself); lua2json.c sends such a table back as an array of
 * that length, nulls in the holes, while every key is an integer in 1..n. */
extern const char conv_arraylen_key;

/* Both walkers keep a stack of frames, one per open table whose Lua slot is
 * tslot: this drops the innermost, finished one and what sits above its
 * slot (an iteration key). Returns 0, a step's "progress". */
static inline int conv_frame_pop(lua_State *L, int tslot, int *nf)
{
    lua_settop(L, tslot - 1);
    (*nf)--;
    return 0;
}

/* Converts the Lua value at idx into a new JSON value in *out. Runs no Lua
 * code and never raises. Returns BX_OK, or BX_E_CONVERSION_ERROR (cycle,
 * depth, size) / BX_E_INTERNAL (out of memory) with a reason in err. */
enum bx_err conv_to_json(lua_State *L, int idx, json_t **out, char *err, size_t errlen);

/* Pushes the Lua value of v. Allocates Lua objects, so it may raise a
 * memory error: call it in protected mode. On BX_E_CONVERSION_ERROR
 * (unknown tag, depth, bad $map) nothing is pushed. */
enum bx_err conv_push_json(lua_State *L, json_t *v, char *err, size_t errlen);

/* Protected forms: push one value (v), every item of an array (list), or
 * raw-set every field of an object as globals (globals). Return BX_OK,
 * BX_E_CONVERSION_ERROR or BX_E_MEMORY_LIMIT; *count gets the number of
 * values pushed (0 on error). */
enum bx_err conv_push_value_p(lua_State *L, json_t *v, char *err, size_t errlen);
enum bx_err conv_push_list_p(lua_State *L, json_t *list, int *count, char *err, size_t errlen);
enum bx_err conv_set_globals_p(lua_State *L, json_t *obj, char *err, size_t errlen);

#endif
