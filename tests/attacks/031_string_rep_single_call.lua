-- attack: one string.rep call asking for a terabyte
-- expect: MemoryLimitExceeded
-- limits: memory_limit=8000000
return #string.rep("x", 1 << 30)
