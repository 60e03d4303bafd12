-- attack: call a host callback with two 10 MB arguments (together over the 16 MB frame limit)
-- expect: LuaError
-- message: arguments too large
-- callbacks: echo
-- limits: memory_limit=64000000
local s = string.rep("c", 10 << 20)
return #echo(s, s)
