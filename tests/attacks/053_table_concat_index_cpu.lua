-- attack: table.concat over 2^40 indices served by an __index function
-- expect: ExecutionTimeout
-- limits: timeout=0.5
local t = setmetatable({}, { __index = function() return "" end })
return #table.concat(t, "", 1, 1 << 40)
