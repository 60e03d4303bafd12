-- attack: block forever in mailbox.recv (no Lua instruction runs while it waits)
-- expect: ExecutionTimeout
-- limits: timeout=0.5
return mailbox.recv()
