-- attack: yield out of the main chunk (and out of a pcall'd function) to the node's C code
-- expect: LuaError
-- message: attempt to yield from outside a coroutine
pcall(coroutine.yield, 1)
coroutine.yield(2)
