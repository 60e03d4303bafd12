-- attack: load with a custom environment to reach hidden globals (io, os.execute, debug, require)
-- expect: ok
-- result: 'nil nil nil nil'
local env = setmetatable({}, { __index = function(_, k) return rawget(_G, k) end })
local f = assert(load([[
  local os = os or {}
  return tostring(io), tostring(os.execute), tostring(debug), tostring(package)
]], "=probe", "t", env))
return table.concat({ f() }, " ")
