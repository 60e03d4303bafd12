-- attack: retune the collector to starve it: a huge pause, a step multiplier past what Lua stores (it wraps to 0), a step size past 2^24, a generational multiplier past a byte, a pause through setpause
-- expect: ok
-- result: '400 100 incremental 400 1000 generational true'
collectgarbage("incremental", 100000, 1, 200)
-- setpause and setstepmul answer the previous value: what the clamp left
local pause = collectgarbage("setpause", 200)
local stepmul = collectgarbage("setstepmul", 1024)
local was = collectgarbage("generational", 100000, 100000)
collectgarbage("setpause", 1000)
local pause2 = collectgarbage("setpause", 200)
local stepmul2 = collectgarbage("setstepmul", 100)
local mode = collectgarbage("incremental", 200, 100, 13)
-- a negative step would credit the collector with a GB of work: 20 MB of
-- garbage would pile up before it ran again
collectgarbage("step", -1000000)
local peak = 0
for i = 1, 2000 do
  local s = string.rep("x", 10000) .. i
  peak = math.max(peak, collectgarbage("count"))
end
return ("%d %d %s %d %d %s %s"):format(pause, stepmul, was, pause2, stepmul2, mode,
                                       peak < 4096)
