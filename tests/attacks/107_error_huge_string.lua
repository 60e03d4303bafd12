-- attack: raise an 8 MB error string
-- expect: LuaError
-- message: zzzzzzzz
error(string.rep("z", 8 << 20), 0)
