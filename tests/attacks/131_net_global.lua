-- attack: use the net module in a VM that is not networked
-- expect: LuaError
-- message: global 'net'
return net.connect("127.0.0.1", 22)
