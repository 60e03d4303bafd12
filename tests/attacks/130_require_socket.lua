-- attack: load LuaSocket in a VM that is not networked
-- expect: LuaError
-- message: global 'require'
local socket = require("socket")
return socket.connect("127.0.0.1", 22)
