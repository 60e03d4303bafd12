-- attack: string.format("%q") of a big binary string repeated through one format call
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
local s = string.rep("\0\1\2\n", 250000)
return #string.format(string.rep("%q", 20), s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s)
