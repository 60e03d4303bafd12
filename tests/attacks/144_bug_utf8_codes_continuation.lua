-- attack: Lua 5.4.4 bug "'utf8.codes' does not raise an error on spurious continuation bytes"
-- expect: any-error
local n = 0
for _, c in utf8.codes("a\x80\x80\x80\xC0\x80\xF4\x90\x80\x80") do n = n + c end
error("decoded " .. n, 0)
