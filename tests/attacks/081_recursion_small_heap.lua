-- attack: unbounded Lua recursion under a small heap: the stack growth hits the memory limit first
-- expect: MemoryLimitExceeded
-- limits: memory_limit=4000000
local function f(n) return 1 + f(n + 1) end
return f(1)
