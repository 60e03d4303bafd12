-- attack: an error object whose __tostring is a C function (coroutine.wrap) resuming an endless loop
-- expect: LuaError
-- message: error object is a table value
error(setmetatable({}, { __tostring = coroutine.wrap(function() while true do end end) }))
