-- attack: print a value whose __tostring loops
-- expect: ExecutionTimeout
-- limits: timeout=0.5
print(setmetatable({}, { __tostring = function() while true do end end }))
