-- attack: run a file from disk with dofile
-- expect: LuaError
-- message: global 'dofile'
return dofile("/etc/passwd")
