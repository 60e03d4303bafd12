-- attack: close a coroutine whose __close handler loops, from inside pcall
-- expect: ExecutionTimeout
-- limits: timeout=0.5
local co = coroutine.create(function()
  local x <close> = setmetatable({}, { __close = function() while true do end end })
  coroutine.yield()
end)
coroutine.resume(co)
while true do pcall(coroutine.close, co) end
