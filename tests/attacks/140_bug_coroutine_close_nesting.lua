-- attack: Lua 5.4.4 bug "C-stack overflow with deep nesting of coroutine.close" (segfaults lua5.4; sandbox.c bounds the nesting)
-- expect: LuaError
-- message: C stack overflow
-- limits: memory_limit=64000000 timeout=5
local coro = false
for _ = 1, 20000 do
  local previous = coro
  coro = coroutine.create(function()
    local cc <close> = setmetatable({}, { __close = function()
      if previous then assert(coroutine.close(previous)) end
    end })
    coroutine.yield()
  end)
  assert(coroutine.resume(coro))
end
error(select(2, coroutine.close(coro)) or "closed without error", 0)
