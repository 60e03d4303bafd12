-- attack: load LuaSocket in a VM that is not networked
-- expect: PolicyViolation
-- message: not in the policy's imports
local socket = require("socket")
return socket.connect("127.0.0.1", 22)
