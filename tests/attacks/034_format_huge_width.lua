-- attack: string.format with a 99999-digit field width
-- expect: LuaError
-- message: invalid conversion
return string.format("%099999d", 1)
