-- attack: a message handler that raises again and again (Lua gives up with "error in error handling")
-- expect: ok
-- result: False
local ok = xpcall(error, function(e) error(e) end, "x")
return ok
