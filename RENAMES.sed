s/\bexec_parse_limits\b/limits_parse/g
