-- attack: loop forever resuming coroutines that hit the limit, swallowing each error
-- expect: ExecutionTimeout
-- limits: timeout=0.5
while true do
  coroutine.resume(coroutine.create(function() while true do end end))
end
