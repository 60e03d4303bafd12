-- attack: run a shell command with os.execute
-- expect: LuaError
-- message: field 'execute'
return os.execute("id > /tmp/bioxen-owned")
