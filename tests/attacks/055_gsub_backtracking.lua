-- attack: gsub with lazy-match backtracking over a long subject (one C call)
-- expect: ExecutionTimeout
-- limits: timeout=0.5
local s = string.rep("a", 30000)
return s:gsub(".-.-.-.-b", "")
