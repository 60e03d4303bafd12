-- attack: swallow the timeout error with pcall and keep looping
-- expect: ExecutionTimeout
-- limits: timeout=0.5
while true do
  pcall(function() while true do end end)
end
