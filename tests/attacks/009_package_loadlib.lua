-- attack: dlopen libc through package.loadlib
-- expect: LuaError
-- message: global 'package'
return package.loadlib("libc.so.6", "system")("id")
