-- attack: load a C module through require
-- expect: PolicyViolation
-- message: not in the policy's imports
return require("io")
