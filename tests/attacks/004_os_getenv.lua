-- attack: read the host's environment with os.getenv
-- expect: LuaError
-- message: field 'getenv'
return os.getenv("HOME")
