-- attack: one gsub call that multiplies the input a thousand times
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local s = string.rep("x", 100000)
return #s:gsub("x", string.rep("y", 1000))
