-- attack: print forever
-- expect: ExecutionTimeout
-- limits: timeout=0.5 max_output=4096
while true do print("flood") end
