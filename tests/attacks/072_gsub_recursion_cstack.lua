-- attack: recursion through string.gsub callbacks (C stack)
-- expect: LuaError
-- message: stack overflow
local function f(s) return (s:gsub(".", f)) end
return f("x")
