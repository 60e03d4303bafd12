-- attack: reach the registry and upvalues through the debug library
-- expect: LuaError
-- message: global 'debug'
return debug.getregistry()
