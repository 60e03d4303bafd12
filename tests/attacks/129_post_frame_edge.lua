-- attack: post a value just under the value limit, so the frame around it is just over the frame limit
-- expect: LuaError
-- message: too large
-- limits: memory_limit=64000000
for cut = 2, 40, 2 do
  local ok, err = pcall(post, string.rep("e", (16 << 20) - cut))
  if not ok then error(err, 0) end
end
