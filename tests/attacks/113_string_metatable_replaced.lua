-- attack: replace the string metatable's fields with looping functions, then error and print
-- expect: LuaError
-- message: plain message
local mt = getmetatable("")
mt.__index = function() while true do end end
mt.__tostring = function() return "owned" end
mt.__concat = function() while true do end end
mt.__len = function() while true do end end
print("printing a string")
error("plain message", 0)
