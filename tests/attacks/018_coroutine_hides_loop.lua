-- attack: run an endless loop inside a coroutine so the limit hook is not carried along
-- expect: InstructionLimitExceeded
-- limits: instruction_limit=2000000
local co = coroutine.wrap(function() while true do end end)
co()
