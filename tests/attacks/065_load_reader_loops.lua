-- attack: a load reader function that never returns
-- expect: ExecutionTimeout
-- limits: timeout=0.5
load(function() while true do end end)
