-- attack: retune the collector (generational, setpause) to starve it
-- expect: ok
-- result: 'false false false'
local a = pcall(collectgarbage, "generational")
local b = pcall(collectgarbage, "incremental", 1000, 0)
local c = pcall(collectgarbage, "setpause", 1000)
return ("%s %s %s"):format(a, b, c)
