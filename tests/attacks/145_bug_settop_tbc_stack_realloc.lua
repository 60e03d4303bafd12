-- attack: Lua 5.4.4 bug "'lua_settop' may use an invalid pointer to stack" (a __close that grows the stack)
-- expect: any-error
local function grow(n) if n > 0 then return grow(n - 1) + 1 end return 0 end
local function f(...)
  local a <close> = setmetatable({}, { __close = function() grow(5000) end })
  local b <close> = setmetatable({}, { __close = function() grow(5000) error("in close", 0) end })
  return ...
end
for i = 1, 50 do pcall(f, 1, 2, 3) end
error("survived", 0)
