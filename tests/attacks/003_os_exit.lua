-- attack: end the node process with os.exit
-- expect: LuaError
-- message: field 'exit'
os.exit(0, true)
