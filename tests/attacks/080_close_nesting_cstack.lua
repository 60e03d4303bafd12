-- attack: __close handlers that close a coroutine whose __close does the same, 200 deep
-- expect: ok
-- result: True
local coro = false
for _ = 1, 200 do
  local previous = coro
  coro = coroutine.create(function()
    local cc <close> = setmetatable({}, { __close = function()
      if previous then coroutine.close(previous) end
    end })
    coroutine.yield()
  end)
  coroutine.resume(coro)
end
return (coroutine.close(coro))
