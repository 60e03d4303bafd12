-- attack: compile a file from disk with loadfile
-- expect: LuaError
-- message: global 'loadfile'
return loadfile("/etc/passwd")
