-- attack: an error object whose __tostring returns a non-string / yields
-- expect: LuaError
-- message: error object is a table value
error(setmetatable({}, { __tostring = coroutine.yield }))
