-- attack: load a forged binary chunk asking for mode "b"
-- expect: LuaError
-- message: attempt to load a binary chunk
local chunk = "\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64\1"
local f, err = load(chunk, "=forged", "b")
if f then return "binary chunk accepted" end
error(err, 0)
