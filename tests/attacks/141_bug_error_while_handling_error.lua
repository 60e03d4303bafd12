-- attack: Lua 5.4.4 bug "Lua-stack overflow when C stack overflows while handling an error" (CVE-2022-33099)
-- expect: any-error
local function loop() assert(pcall(loop)) end
error(select(2, xpcall(loop, loop)), 0)
