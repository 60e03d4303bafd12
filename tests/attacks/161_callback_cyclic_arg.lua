-- attack: pass a cyclic table and a coroutine to a host callback
-- expect: LuaError
-- message: cycle
-- callbacks: echo
local t = {}
t.t = t
pcall(echo, coroutine.create(print))
return echo(t)
