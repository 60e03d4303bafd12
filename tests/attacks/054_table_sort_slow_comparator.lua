-- attack: table.sort with a comparator that burns CPU
-- expect: ExecutionTimeout
-- limits: timeout=0.5
local t = {}
for i = 1, 1000 do t[i] = (i * 7919) % 1000 end
table.sort(t, function(a, b) for _ = 1, 1e6 do end return a < b end)
