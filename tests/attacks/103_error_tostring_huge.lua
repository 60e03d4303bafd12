-- attack: raise an error object whose __tostring returns 8 MB of text
-- expect: LuaError
-- message: xxxxxxxxxx
error(setmetatable({}, { __tostring = function() return string.rep("x", 8 << 20) end }))
