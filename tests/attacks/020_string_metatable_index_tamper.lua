-- attack: replace the string metatable's __index to hijack every method call
-- expect: LuaError
-- message: hijacked
local mt = getmetatable("")
mt.__index = function(s, k) error("hijacked " .. k, 0) end
return ("x"):upper()
