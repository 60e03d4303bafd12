-- attack: set a hostile metatable on _G (every missing global raises)
-- expect: LuaError
-- message: hijacked
setmetatable(_G, {
  __index = function(_, k) error("hijacked " .. tostring(k), 0) end,
  __newindex = function() while true do end end,
})
return not_a_global
