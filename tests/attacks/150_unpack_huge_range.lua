-- attack: table.unpack over a billion slots
-- expect: LuaError
-- message: too many results
return table.unpack({}, 1, 1e9)
