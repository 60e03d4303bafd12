-- attack: allocate without bound inside an xpcall message handler
-- expect: ok
-- result: False
-- limits: memory_limit=8000000
local ok = xpcall(error, function(e)
  local t = {}
  for i = 1, 1e10 do t[i] = i end
end, "boom")
return ok
