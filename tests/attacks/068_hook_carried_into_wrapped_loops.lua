-- attack: hide an endless loop in a coroutine resumed from a __close handler inside a gsub callback inside pcall
-- expect: InstructionLimitExceeded
-- limits: instruction_limit=1000000
pcall(string.gsub, "x", ".", function()
  local x <close> = setmetatable({}, { __close = function()
    coroutine.wrap(function() while true do end end)()
  end })
end)
return "escaped"
