-- attack: return a table that contains itself
-- expect: ConversionError
local t = {}
t[1] = t
return t
