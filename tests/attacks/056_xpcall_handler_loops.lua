-- attack: an xpcall message handler that never returns
-- expect: ExecutionTimeout
-- limits: timeout=0.5
xpcall(error, function() while true do end end, "x")
