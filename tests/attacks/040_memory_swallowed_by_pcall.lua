-- attack: hit the memory limit again and again inside pcall and carry on
-- expect: ok
-- result: 'survived'
-- limits: memory_limit=8000000
for _ = 1, 20 do
  pcall(function() local t = {} for i = 1, 1e10 do t[i] = i end end)
end
return "survived"
