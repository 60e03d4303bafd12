-- attack: each coroutine resumes a new one inside itself (C stack per level)
-- expect: LuaError
-- message: stack overflow
local function f() return coroutine.wrap(f)() end
return f()
