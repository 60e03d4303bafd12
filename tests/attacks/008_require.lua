-- attack: load a C module through require
-- expect: LuaError
-- message: global 'require'
return require("io")
