-- attack: table.move over 2^50 plain slots: a C loop with no Lua code to hook
-- expect: ExecutionTimeout
-- message: restarted
-- limits: timeout=0.5
table.move({}, 1, 1 << 50, 1, {})
