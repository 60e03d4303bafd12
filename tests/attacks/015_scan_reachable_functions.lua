-- attack: walk everything reachable from _G and the string metatable for a dangerous function
-- expect: ok
-- result: ''
local bad = { execute=1, exit=1, getenv=1, remove=1, rename=1, tmpname=1, dump=1, loadlib=1,
  dofile=1, loadfile=1, require=1, getregistry=1, getupvalue=1, setupvalue=1, sethook=1,
  open=1, popen=1, lines=1, input=1, output=1, setlocale=1, searchpath=1, upvalueid=1 }
-- policy-gated, refused unless the VM's Policy grants them (attacks 008, 130)
local gated = { ["_G.require"] = true, ["_G.fs.lines"] = true }
local found, seen = {}, {}
local function walk(t, path)
  if seen[t] then return end
  seen[t] = true
  for k, v in next, t do
    local p = path .. "." .. tostring(k)
    if bad[k] and v ~= table.remove and not gated[p] then found[#found + 1] = p end
    if type(v) == "table" then walk(v, p) end
  end
  local mt = getmetatable(t)
  if type(mt) == "table" then walk(mt, path .. "<mt>") end
end
walk(_G, "_G")
walk(getmetatable(""), "strmt")
table.sort(found)
return table.concat(found, ",")
