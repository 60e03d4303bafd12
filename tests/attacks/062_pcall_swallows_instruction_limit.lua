-- attack: swallow the instruction-limit error with pcall and keep going
-- expect: InstructionLimitExceeded
-- limits: instruction_limit=1000000
for _ = 1, 1e9 do
  pcall(function() while true do end end)
end
return "escaped"
