-- attack: a __concat metamethod recursing through ".."
-- expect: LuaError
-- message: stack overflow
local mt = {}
mt.__concat = function(a, b) return a .. b end
local t = setmetatable({}, mt)
return t .. "x"
