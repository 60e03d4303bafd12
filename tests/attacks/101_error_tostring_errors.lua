-- attack: raise an error object whose __tostring raises
-- expect: LuaError
-- message: error object is a table value
error(setmetatable({}, { __tostring = function(self) error(self) end }))
