-- attack: return a table whose __pairs/__index/__len loop (conversion must run no Lua code)
-- expect: ok
-- result: {'a': 1}
return setmetatable({ a = 1 }, {
  __pairs = function() while true do end end,
  __index = function() while true do end end,
  __len = function() while true do end end,
})
