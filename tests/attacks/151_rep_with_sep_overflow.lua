-- attack: string.rep whose total size overflows size_t
-- expect: LuaError
-- message: too large
return string.rep("x", 1 << 62, "yy")
