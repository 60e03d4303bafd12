-- attack: string.pack with a format that expands to gigabytes of padding
-- expect: any-error
-- limits: memory_limit=8000000
return #string.pack("i16" .. string.rep("Xi16i16", 1000), 1, table.unpack((function()
  local t = {} for i = 1, 2000 do t[i] = i end return t end)())):rep(1 << 20)
