-- attack: mail the bystander a small table holding 200000 references to one 10 KB string
-- expect: LuaError
-- message: too large
local s = string.rep("r", 10000)
local t = {}
for i = 1, 200000 do t[i] = s end
mailbox.send("bystander", t)
