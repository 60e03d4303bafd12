-- attack: replace mailbox functions and call the host API with hostile arguments
-- expect: any-error
local real = mailbox.send
mailbox.send = function() while true do end end
local t = {}
t[1] = t
return real("atk-112", t)
