-- attack: raise nil, then a coroutine, then a function as the error object
-- expect: LuaError
-- message: error object is a nil value
pcall(error, coroutine.create(print))
pcall(error, print)
error(nil)
