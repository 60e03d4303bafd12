-- attack: compile a chunk with 100000 nested parentheses (parser recursion)
-- expect: LuaError
-- message: overflow
local f, err = load(string.rep("(", 100000) .. "1" .. string.rep(")", 100000))
if f then return "compiled" end
error(err, 0)
