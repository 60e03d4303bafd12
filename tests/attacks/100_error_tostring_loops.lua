-- attack: raise an error object whose __tostring loops forever
-- expect: LuaError
-- message: error object is a table value
error(setmetatable({}, { __tostring = function() while true do end end }))
