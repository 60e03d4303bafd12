-- attack: one print of 8 MB
-- expect: ok
-- result: 'done'
-- truncated: true
print(string.rep("x", 8 << 20))
return "done"
