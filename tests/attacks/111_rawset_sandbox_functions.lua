-- attack: overwrite tostring, string.format, error and setmetatable, then use print and error paths
-- expect: LuaError
-- message: still a clean error
rawset(_G, "tostring", function() while true do end end)
string.format = function() while true do end end
rawset(string, "rep", nil)
print({}, 1, "x", nil, true)
error("still a clean error", 0)
