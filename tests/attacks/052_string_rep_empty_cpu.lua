-- attack: string.rep of the empty string 2^62 times: no memory, all CPU, one C call
-- expect: ExecutionTimeout
-- limits: timeout=0.5
return #string.rep("", 1 << 62)
