-- attack: return a table nested 100000 deep
-- expect: ConversionError
local t = {}
for _ = 1, 100000 do t = { t } end
return t
