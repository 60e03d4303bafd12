-- attack: grow a table without bound in a Lua loop
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local t = {}
for i = 1, 1e10 do t[i] = i end
