-- attack: call a failing host callback in a loop, swallowing each error, past the timeout
-- expect: ExecutionTimeout
-- callbacks: fail
-- limits: timeout=0.5
while true do pcall(fail, 1, 2, 3) end
