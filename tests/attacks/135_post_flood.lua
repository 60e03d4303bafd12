-- attack: fill the VM's outbox in the manager with 4 MB values until it blocks
-- expect: ExecutionTimeout
-- limits: timeout=1 memory_limit=16000000
local big = string.rep("p", 4 << 20)
while true do post(big) end
