-- attack: flood the VM's own mailbox with 4 MB messages (it can never drain it while sending)
-- expect: ExecutionTimeout
-- limits: timeout=1 memory_limit=16000000
local big = string.rep("m", 4 << 20)
while true do mailbox.send(mailbox.name(), big) end
