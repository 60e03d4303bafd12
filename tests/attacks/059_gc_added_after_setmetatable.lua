-- attack: add __gc to the metatable after setmetatable, and to the string metatable
-- expect: ok
-- result: 'no finalizer ran'
local ran = false
local mt = {}
local obj = setmetatable({}, mt)
mt.__gc = function() ran = true while true do end end
getmetatable("").__gc = function() ran = true while true do end end
obj = nil
collectgarbage()
collectgarbage()
return ran and "finalizer ran" or "no finalizer ran"
