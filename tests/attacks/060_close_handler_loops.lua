-- attack: a __close handler (to-be-closed variable) that loops forever
-- expect: ExecutionTimeout
-- limits: timeout=0.5
do
  local x <close> = setmetatable({}, { __close = function() while true do end end })
end
