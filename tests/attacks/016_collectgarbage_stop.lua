-- attack: switch the collector off so garbage can pile up unseen
-- expect: LuaError
-- message: invalid option 'stop'
collectgarbage("stop")
