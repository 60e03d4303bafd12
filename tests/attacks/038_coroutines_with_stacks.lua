-- attack: park coroutines each holding a deep Lua stack
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local cs = {}
local function deep(n) if n > 0 then return deep(n - 1) + 1 end coroutine.yield() return 0 end
for i = 1, 1e9 do
  local co = coroutine.create(deep)
  coroutine.resume(co, 200)
  cs[i] = co
end
