-- attack: Lua 5.4.4 bug "'break' may not properly exit a loop with a to-be-closed variable"
-- expect: any-error
local closed = 0
local function tbc() return setmetatable({}, { __close = function() closed = closed + 1 end }) end
for i = 1, 10 do
  local x <close> = tbc()
  while true do
    local y <close> = tbc()
    break
  end
  if i == 5 then break end
end
error("closed " .. closed, 0)
