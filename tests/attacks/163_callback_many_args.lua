-- attack: call a host callback with 100000 arguments and a deep table
-- expect: LuaError
-- message: deep
-- callbacks: echo
local t = {}
for i = 1, 100000 do t[i] = i end
echo(table.unpack(t))
local d = {}
for _ = 1, 1000 do d = { d } end
return echo(d)
