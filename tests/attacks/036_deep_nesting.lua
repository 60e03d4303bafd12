-- attack: nest tables inside tables until memory runs out
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local t = {}
while true do t = { t } end
