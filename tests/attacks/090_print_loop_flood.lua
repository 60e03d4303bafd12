-- attack: print in a loop far past max_output
-- expect: ok
-- result: 'done'
-- truncated: true
-- limits: max_output=65536
for i = 1, 100000 do print(string.rep("x", 100), i) end
return "done"
