-- attack: double a string until the heap bursts
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local s = "x"
while true do s = s .. s end
