/* textcodec.h - the node's byte-string codecs: strict UTF-8 (what Jansson
 * accepts), text for the wire with bad bytes replaced, and the base64 of
 * the $b tag that carries a Lua string which is not UTF-8. */
#ifndef BX_TEXTCODEC_H
#define BX_TEXTCODEC_H

#include <jansson.h>
#include <lua.h>
#include <stddef.h>

/* True when s[0..len) is strict UTF-8. */
int textcodec_utf8_valid(const char *s, size_t len);
/* A JSON string of s with invalid bytes replaced by U+FFFD (output, error
 * messages, names in events); NULL when out of memory. */
json_t *textcodec_json(const char *s, size_t len);
/* {"$b": base64 of s}; NULL when out of memory. */
json_t *textcodec_b64_tag(const char *s, size_t len);
/* Decodes base64 (padding optional) into a Lua string pushed on L, built
 * in a luaL_Buffer so the heap limit sees it (may raise a memory error).
 * 0, or -1 when s is not base64 (a partial buffer may be left on the
 * stack: the caller restores its top). */
int textcodec_b64_push(lua_State *L, const char *s, size_t len);

#endif
