-- attack: unbounded Lua recursion
-- expect: LuaError
-- message: stack overflow
-- limits: memory_limit=128000000
local function f(n) return 1 + f(n + 1) end
return f(1)
