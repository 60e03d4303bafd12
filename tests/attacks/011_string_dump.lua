-- attack: dump a function to bytecode with string.dump (via the string metatable too)
-- expect: LuaError
-- message: 'dump'
local f = function() return 1 end
local dump = string.dump or ("").dump or getmetatable("").__index.dump
return dump(f)
