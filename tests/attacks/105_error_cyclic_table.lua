-- attack: raise a table that contains itself
-- expect: LuaError
-- message: error object is a table value
local t = {}
t.self, t[1] = t, t
error(t)
