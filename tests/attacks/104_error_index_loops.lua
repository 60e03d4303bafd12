-- attack: raise an error table whose __index and __name are hostile
-- expect: LuaError
-- message: error object is a table value
error(setmetatable({}, {
  __index = function() while true do end end,
  __name = string.rep("n", 1 << 20),
  __len = function() while true do end end,
}))
