-- attack: an __eq metamethod recursing through "=="
-- expect: LuaError
-- message: stack overflow
local mt = {}
mt.__eq = function(a, b) return a == b end
local x, y = setmetatable({}, mt), setmetatable({}, mt)
return x == y
