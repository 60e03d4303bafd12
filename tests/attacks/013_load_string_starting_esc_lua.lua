-- attack: load a string starting with "\27Lua" in the default mode, and via a reader function
-- expect: LuaError
-- message: attempt to load a binary chunk
local f, err = load("\27Lua\84\0garbage")
assert(not f, "binary chunk accepted by default mode")
local parts = { "\27", "Lua", "\84\0" }
local i = 0
f, err = load(function() i = i + 1 return parts[i] end, "=reader", "bt")
if f then return "binary chunk accepted through a reader" end
error(err, 0)
