-- attack: os.date with a huge or invalid format
-- expect: LuaError
-- message: invalid conversion
local s = os.date(string.rep("%c", 100000))
return os.date("%Q")
