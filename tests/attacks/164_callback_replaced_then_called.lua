-- attack: overwrite a callback global with rawset, keep the original, and call it from a __close and a coroutine
-- expect: ok
-- result: 'back'
-- callbacks: echo
local real = echo
rawset(_G, "echo", function() while true do end end)
local got
do
  local x <close> = setmetatable({}, { __close = function() got = real("back") end })
end
local co = coroutine.wrap(function() return real(got) end)
return co()
