-- attack: table.concat of many references to one big string (cheap table, huge result)
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local big = string.rep("y", 100000)
local t = {}
for i = 1, 1000 do t[i] = big end
return #table.concat(t)
