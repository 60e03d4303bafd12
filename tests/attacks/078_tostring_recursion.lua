-- attack: a __tostring that calls tostring on itself
-- expect: LuaError
-- message: stack overflow
local t = setmetatable({}, { __tostring = function(s) return tostring(s) end })
return tostring(t)
