-- attack: raise an error object whose __tostring asks for a terabyte
-- expect: LuaError
-- message: error object is a table value
error(setmetatable({}, { __tostring = function() return string.rep("x", 1 << 40) end }))
