-- attack: the plain endless loop
-- expect: ExecutionTimeout
-- limits: timeout=0.5
while true do end
