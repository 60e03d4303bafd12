-- attack: read a file through the io library
-- expect: LuaError
-- message: global 'io'
return io.open("/etc/passwd"):read("a")
