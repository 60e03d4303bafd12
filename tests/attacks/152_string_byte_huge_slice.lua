-- attack: string.byte of a 10 MB slice (10 million results on the stack)
-- expect: LuaError
-- message: too long
return string.byte(string.rep("x", 10000000), 1, -1)
