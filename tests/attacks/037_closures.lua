-- attack: allocate closures with their own upvalues without bound
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local fs = {}
for i = 1, 1e10 do
  local x = i
  fs[i] = function() return x end
end
