-- attack: utf8.char with a huge argument list, then repeated into a single huge string
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local t = {}
for i = 1, 50000 do t[i] = 0x10FFFF end
local s = utf8.char(table.unpack(t))
return #s:rep(1000)
