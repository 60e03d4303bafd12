-- attack: flood the bystander's mailbox (it must stay responsive; its box is bounded)
-- expect: ExecutionTimeout
-- limits: timeout=1 memory_limit=16000000
local big = string.rep("b", 1 << 20)
while true do mailbox.send("bystander", big) end
