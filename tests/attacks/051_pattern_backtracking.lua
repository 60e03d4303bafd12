-- attack: an exponential backtracking pattern (runs inside one C call)
-- expect: ExecutionTimeout
-- message: restarted
-- limits: timeout=0.5
return string.find(string.rep("a", 40), string.rep("a*", 30) .. "b")
