-- attack: a __gc finalizer that loops forever (finalizers run with hooks off)
-- expect: LuaError
-- message: __gc metamethods are not allowed
setmetatable({}, { __gc = function() while true do end end })
