"""collectgarbage in the sandbox (issue 11 §6): both collector modes with
their parameters, the memory limit in either, and pure computation that runs
the same in a VM as under plain /usr/bin/lua5.4 (docs/security.md)."""

import os
import subprocess

import pytest

from pylua_bioxen_vm import LuaError, MemoryLimitExceeded

LUA = "/usr/bin/lua5.4"
T = 30.0  # deadline for every wait; only catches hangs

# Each prints what it computes; none touches what the sandbox removes, so
# the printed text must be the same byte for byte. Error positions name the
# chunk, which differs, so errors are printed without them.
PROGRAMS = {
    "strings": r"""
local s = "The quick brown fox jumps over the lazy dog"
print(s:upper(), s:lower():reverse(), #s, s:sub(5, 9), s:sub(-3))
print(s:find("o"), s:find("o", 20, true), s:match("(%a+) (%a+)$"))
print((s:gsub("%w+", function(w) return #w end)))
print((s:gsub("(o)(%a)", "%2%1", 2)))
for w in s:gmatch("%a%a%a%a%a") do acc = (acc or "") .. w .. "," end
print(acc)
print(("x"):rep(5, "-"), ("ab"):rep(0), s:byte(1, 4), string.char(72, 105))
print(string.format("%5d|%-5s|%05.1f|%x|%X|%o|%e|%g|%q", 42, "ab", 3.14159, 255, 255, 8, 12345.678, 1e20, "a\n\0b"))
print(string.format("%q", 1/3), string.format("%q", math.mininteger), string.format("%10.3s|", "abcdef"))
local p = string.pack("<i4 d z s1", -7, 2.5, "zero", "len")
print(#p, string.unpack("<i4 d z s1", p))
print(string.packsize("i4 i8 d"), tostring(nil), tostring(1e100), tostring(-0.0), 2^63, math.pi)
print(("%s=%s"):format("k", {} ~= nil), ("abc"):len(), ("%d"):format(3.0))
print(select("#", ("a,b,,c"):find(",", 1, true)), ("key = value"):match("^(%w+)%s*=%s*(%w+)$"))
""",
    "tables": r"""
local t = {}
for i = 1, 20 do t[i] = (i * 7919) % 101 end
table.sort(t)
print(table.concat(t, " "))
table.sort(t, function(a, b) return a > b end)
print(table.concat(t, ",", 3, 8))
table.insert(t, 1, "first") table.insert(t, "last")
print(#t, table.remove(t), table.remove(t, 1), #t)
print(table.unpack(table.move({1, 2, 3, 4, 5}, 2, 4, 1)))
local packed = table.pack(1, nil, 3, nil)
print(packed.n, #{n = 1}, select("#", table.unpack(packed, 1, packed.n)))
local words, keys = {banana = 3, apple = 1, cherry = 2}, {}
for k in pairs(words) do keys[#keys + 1] = k end
table.sort(keys, function(a, b) return words[a] < words[b] end)
print(table.concat(keys, " "))
local mt = {__index = function(_, k) return k .. "!" end, __len = function() return 99 end,
            __call = function(self, x) return x * 2 end, __tostring = function() return "T" end,
            __concat = function(a, b) return "cat" end, __eq = function() return true end}
local o = setmetatable({}, mt)
print(o.hi, #o, o(21), tostring(o), o .. "x", o == setmetatable({}, mt), rawlen(o), rawget(o, "hi"))
local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x}, V) end
V.__lt = function(a, b) return a.x < b.x end
local a, b = setmetatable({x = 1}, V), setmetatable({x = 2}, V)
print((a + b).x, a < b, b < a, a <= b)
do
  local log = {}
  do
    local c <close> = setmetatable({}, {__close = function() log[#log + 1] = "closed" end})
    log[#log + 1] = "body"
  end
  print(table.concat(log, " "))
end
local deep = {}
local cur = deep
for i = 1, 50 do cur.next = {i = i} cur = cur.next end
local n, c = 0, deep.next
while c do n = n + c.i c = c.next end
print(n, next({}), type(next))
""",
    "math": r"""
print(7 // 2, -7 // 2, 7 % -3, -7 % 3, 7.5 // 2, 2^10, 10 / 4, 3 | 5, 3 & 5, 3 ~ 5, ~0, 1 << 62, 1 >> 1)
print(math.maxinteger + 1 == math.mininteger, math.maxinteger * 2, math.mininteger // -1)
print(math.tointeger(3.0), math.tointeger(3.5), math.type(1), math.type(1.0), math.type("1"))
print(math.fmod(7, 3), math.fmod(-7, 3), math.fmod(7, -3.5), math.abs(math.mininteger), math.ult(1, -1))
print(math.floor(-3.5), math.ceil(-3.5), math.floor(2^62), math.sqrt(2), math.exp(1), math.log(8, 2), math.log(100, 10))
print(math.sin(1), math.cos(1), math.tan(1), math.asin(0.5), math.atan(1, 2), math.huge, -math.huge)
print(math.max(3, 9.5, -1), math.min(3, 9.5, -1), math.modf(3.7), math.modf(-3.7), 0/0 ~= 0/0)
print(string.format("%.17g %.17g", 0.1 + 0.2, 1 / 3), 1e308 * 10, -1e308 * 10, 2^53 + 1)
print(tonumber("0x10"), tonumber("10", 2), tonumber("z", 36), tonumber(" 12 "), tonumber("1e2"), tonumber("x"))
local ok, e = pcall(function() return 1 // 0 end)
print(ok, (e:gsub("^.-:%d+: ", "")))
math.randomseed(42)
local r = {}
for i = 1, 5 do r[i] = math.random(1, 1000) end
print(table.concat(r, " "), math.random(0) ~= nil)
local primes, sieve = {}, {}
for i = 2, 2000 do
  if not sieve[i] then primes[#primes + 1] = i for j = i * i, 2000, i do sieve[j] = true end end
end
print(#primes, primes[#primes])
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print(fib(22))
""",
    "utf8": r"""
local s = "héllo wörld ✓ 😀"
print(#s, utf8.len(s), utf8.char(72, 233, 10003, 128512), utf8.codepoint(s, 1, 3))
for p, c in utf8.codes("aé✓") do acc = (acc or "") .. p .. ":" .. c .. " " end
print(acc)
print(utf8.offset(s, 3), utf8.offset(s, -1), utf8.len("\xff"), utf8.len(s, 3))
print(#utf8.charpattern, select(2, s:gsub(utf8.charpattern, "")))
print(pcall(utf8.codepoint, "\xff"))
print(utf8.char(0x7FFFFFFF):byte(1, -1))
local rev = {}
for _, c in utf8.codes(s) do table.insert(rev, 1, utf8.char(c)) end
print(table.concat(rev))
""",
    "coroutines": r"""
local function gen(n)
  return coroutine.wrap(function() for i = 1, n do coroutine.yield(i, i * i) end return "done" end)
end
local g = gen(4)
for _ = 1, 5 do print(g()) end
local co = coroutine.create(function(a, b)
  print("start", a, b, coroutine.isyieldable(), coroutine.status(coroutine.running()))
  local c = coroutine.yield(a + b)
  local d, e = coroutine.yield(c * 2)
  error({code = d + e})
end)
print(coroutine.resume(co, 1, 2))
print(coroutine.status(co), coroutine.resume(co, 10))
local ok, err = coroutine.resume(co, 3, 4)
print(ok, type(err), err.code, coroutine.status(co), coroutine.resume(co))
print(coroutine.isyieldable(), select(2, coroutine.running()))
local inner = coroutine.wrap(function()
  local ok2, v = pcall(function() return coroutine.yield("from pcall") + 1 end)
  coroutine.yield(ok2, v)
end)
print(inner()) print(inner(41))
local closing = coroutine.create(function()
  local x <close> = setmetatable({}, {__close = function() print("closed in close") end})
  coroutine.yield()
end)
coroutine.resume(closing)
print(coroutine.close(closing), coroutine.status(closing))
local function producer() return coroutine.wrap(function() for w in ("a b c d"):gmatch("%a") do coroutine.yield(w) end end) end
local function filter(p) return coroutine.wrap(function() for w in p do coroutine.yield(w:upper()) end end) end
local out = {}
for w in filter(producer()) do out[#out + 1] = w end
print(table.concat(out))
local e = select(2, pcall(function() local x = nil return x.y end))
print((e:gsub("^.-:%d+: ", "")))
""",
    "collector": r"""
-- lua.c starts in generational mode, a VM in the library's incremental one
collectgarbage("incremental")
print(type(collectgarbage("count")), collectgarbage("count") > 0, collectgarbage("isrunning"))
print(collectgarbage(), collectgarbage("collect"), type(collectgarbage("step")), type(collectgarbage("step", 10)))
print(collectgarbage("incremental", 100, 200, 10))
local weak = setmetatable({}, {__mode = "v"})
local function churn(n)
  local keep = {}
  for i = 1, n do
    local t = {i, tostring(i), {i}}
    if i % 100 == 0 then keep[#keep + 1] = t end
  end
  return keep
end
local kept = churn(20000)
weak[1], weak[2] = {}, kept
collectgarbage()
print(#kept, kept[#kept][2], weak[1] == nil, weak[2] == kept)
print(collectgarbage("generational", 20, 100), collectgarbage("isrunning"))
kept = churn(20000)
weak[1] = {}
collectgarbage()
print(#kept, weak[1] == nil, type(collectgarbage("step")), collectgarbage("count") > 0)
print(collectgarbage("generational"), collectgarbage("incremental"), collectgarbage("incremental"))
print(collectgarbage("isrunning"), collectgarbage("restart"))
""",
}


def run_plain(code):
    r = subprocess.run([LUA, "-"], input=code.encode(), capture_output=True, timeout=T)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode()


@pytest.mark.skipif(not os.access(LUA, os.X_OK), reason="no " + LUA)
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_pure_computation_runs_as_under_plain_lua(manager, name):
    code = PROGRAMS[name]
    want = run_plain(code)
    assert want.count("\n") >= 5
    vm = manager.create_vm("plain-" + name, memory_limit=64 << 20, timeout=T)
    got = vm.execute_result(code).output
    assert got == want


def test_both_modes_and_parameters_are_accepted(manager):
    vm = manager.create_vm("gcmodes")
    assert vm.execute("return collectgarbage('generational', 20, 100)") == "incremental"
    assert vm.execute("return collectgarbage('incremental', 100, 200, 10)") == "generational"
    assert vm.execute("return collectgarbage('generational')") == "incremental"
    assert vm.execute("return collectgarbage('incremental', 0, 0, 0)") == "generational"
    # within range the parameters are Lua's own
    assert vm.execute("collectgarbage('setpause', 150) return collectgarbage('setpause', 200)") == 148
    with pytest.raises(LuaError, match="invalid option 'stop'"):
        vm.execute("collectgarbage('stop')")
    with pytest.raises(LuaError, match="number has no integer representation"):
        vm.execute("collectgarbage('incremental', 1.5)")
    assert vm.execute("return collectgarbage('isrunning')") is True


@pytest.mark.parametrize("mode", ["generational", "incremental"])
def test_memory_limit_holds_in_both_modes(manager, mode):
    vm = manager.create_vm("gclimit-" + mode, memory_limit=4 << 20, timeout=T)
    args = "20, 100" if mode == "generational" else "100, 200, 10"
    assert vm.execute("return collectgarbage(%r, %s)" % (mode, args)) == "incremental"
    # garbage far past the limit is collected in time: no error
    assert vm.execute("local n = 0 for i = 1, 3000 do local s = ('x'):rep(10000) .. i n = n + #s end "
                      "return n > 30e6") is True
    with pytest.raises(MemoryLimitExceeded):
        vm.execute("local t = {} for i = 1, 1e7 do t[i] = {i} end")
    # usable after, still in the mode it chose, the heap back under the limit
    assert vm.execute("return collectgarbage('incremental'), 1 + 1") == (mode, 2)
    assert vm.stats()["mem_bytes"] < 4 << 20
    assert vm.execute("collectgarbage(%r) local t = {} for i = 1, 1000 do t[i] = {i} end return #t"
                      % mode) == 1000
