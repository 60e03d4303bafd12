-- attack: coroutine edge cases: resume the main thread or itself, close a running coroutine, yield across C calls
-- expect: ok
-- result: 'false false false false false true true'
local main = coroutine.running()
local r = {}
r[1] = coroutine.resume(main)
local self_co
self_co = coroutine.create(function() return coroutine.resume(self_co) end)
local _, inner_ok = coroutine.resume(self_co)
r[2] = inner_ok
r[3] = pcall(coroutine.close, main)
r[4] = coroutine.resume(coroutine.create(function()
  table.sort({ 3, 2, 1 }, function(a, b) coroutine.yield() return a < b end)
end))
r[5] = coroutine.resume(coroutine.create(function()
  return ("abc"):gsub(".", function(c) coroutine.yield(c) end)
end))
-- yielding from a metamethod and from inside pcall is allowed in 5.4
local t = setmetatable({}, { __index = function(_, k) return coroutine.yield(k) end })
local co = coroutine.wrap(function() return t.key end)
r[6] = co() == "key"
r[7] = coroutine.wrap(function() return pcall(coroutine.yield, 1) end)() == 1
for i = 1, #r do r[i] = tostring(r[i]) end
return table.concat(r, " ")
