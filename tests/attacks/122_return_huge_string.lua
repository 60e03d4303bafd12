-- attack: return a string larger than the frame limit (escaped JSON grows it further)
-- expect: any-error
-- limits: memory_limit=80000000
return string.rep("\1", 20 << 20)
