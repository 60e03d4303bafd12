-- attack: Lua 5.4.4 bug "Lua can generate wrong code when _ENV is <const>" (CVE-2022-28805)
-- expect: any-error
local _ENV <const> = 12
local function f() return a.b.c, x.y end
return f()
