-- attack: return a small table holding 200000 references to one 10 KB string (2 GB of JSON from a 4 MB heap)
-- expect: ConversionError
-- message: too large
local s = string.rep("r", 10000)
local t = {}
for i = 1, 200000 do t[i] = s end
return t
