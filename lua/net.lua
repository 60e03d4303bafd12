-- net.lua - the `net` module of networked VMs: framed messages between VMs
-- over LuaSocket TCP (loopback, between VMs of one manager, and the policy's
-- grants).
-- Connects and binds go through the reach check of vmnode/reach.c.
-- Compiled into bioxen-vmnode; netlib_register runs it once per Lua state
-- with the C primitives below and keeps `internal` (pump, fds) for the
-- node's idle loop. Returns the public table and the internal one.
--
-- Wire: one message = one line "[v]\n", v in the node's tagged-JSON value
-- encoding, so strings with newlines or NULs never split a frame.
local socket, encode, decode, wait, getfd, MSG_MAX = ...

local tcp, tcp4, tcp6, gettime = socket.tcp, socket.tcp4, socket.tcp6, socket.gettime
local SEND_TIMEOUT = 5       -- seconds a send may wait for a peer that does not read
local CONNECT_TIMEOUT = 5
local INBOX_MAX = 100000     -- queued messages; past this, peers are not read
-- Lines one pump reads. The idle loop runs pump under a wall limit (netlib.c),
-- and a limit that trips between a read and its delivery loses that line:
-- a peer streaming megabytes kept one pump going past 2 s on an ASan build.
-- So a pump stops after this many and says more may be buffered.
local PUMP_LINES = 256
local budget = 0

local servers = {}           -- list of listening sockets
local peers = {}             -- id -> {sock, id, fd, host, port, inbound, pending}
local nextid = 0
local inbox, ihead, itail = {}, 1, 0
local accepted, ahead, atail = {}, 1, 0
local handler

local function add_peer(sock, inbound)
    sock:settimeout(0)
    sock:setoption("tcp-nodelay", true)
    nextid = nextid + 1
    local host, port = sock:getpeername()
    local p = { sock = sock, id = nextid, fd = getfd(sock), host = host,
                port = tonumber(port), inbound = inbound }
    peers[nextid] = p
    if inbound then
        atail = atail + 1
        accepted[atail] = nextid
    end
    return p
end

local function drop(p)
    if peers[p.id] then
        peers[p.id] = nil
        p.sock:close()
    end
end

local function deliver(v, id)
    if handler then
        -- a failing handler must not stop the pump; its error is dropped
        pcall(handler, v, id)
    else
        itail = itail + 1
        inbox[itail] = { v, id }
    end
end

local function read_peer(p)
    while itail - ihead + 1 < INBOX_MAX and budget > 0 do
        budget = budget - 1
        local line, err, partial = p.sock:receive("*l", p.pending)
        if line then
            p.pending = nil
            local ok, v = pcall(decode, line)
            if not ok then drop(p) return end
            deliver(v, p.id)
        elseif err == "timeout" then
            p.pending = partial ~= "" and partial or nil
            if partial and #partial > MSG_MAX then drop(p) end
            return
        else
            drop(p)          -- "closed" or a socket error
            return
        end
    end
end

local function accept_all()
    for _, s in ipairs(servers) do
        while true do
            local c = s:accept()
            if not c then break end
            add_peer(c, true)
        end
    end
end

-- Accepts and reads what is ready, never blocking, up to PUMP_LINES lines;
-- true when it stopped there (lines may wait in LuaSocket's buffer, where
-- no poll sees them: call it again before waiting).
local function pump()
    budget = PUMP_LINES
    accept_all()
    local list = {}
    for _, p in pairs(peers) do list[#list + 1] = p end
    table.sort(list, function(a, b) return a.id < b.id end)
    for _, p in ipairs(list) do
        if peers[p.id] then read_peer(p) end
    end
    return budget <= 0
end

-- The fds worth polling now (peers are left out while the inbox is full).
local function fds()
    local t = {}
    for _, s in ipairs(servers) do t[#t + 1] = getfd(s) end
    if itail - ihead + 1 < INBOX_MAX then
        for _, p in pairs(peers) do t[#t + 1] = p.fd end
    end
    return t
end

local function peer_of(id, fname)
    local p = peers[id]
    if not p then error(fname .. ": no open peer " .. tostring(id), 3) end
    return p
end

local function send_line(p, line)
    p.sock:settimeout(SEND_TIMEOUT)
    local ok, err = p.sock:send(line)
    p.sock:settimeout(0)
    if not ok then
        drop(p)
        if err == "timeout" then
            error("net.send: peer " .. p.id .. " is not reading (gave up after "
                  .. SEND_TIMEOUT .. "s)", 3)
        end
        error("net.send: peer " .. p.id .. " is gone (" .. tostring(err) .. ")", 3)
    end
end

local net = {}

-- Listens on host:port (default 127.0.0.1; port 0 = any free port) and
-- accepts connections by itself from then on. Returns the bound port.
function net.listen(port, host)
    -- a tcp() socket has no fd until bind, so the option would be lost:
    -- the children of a listener without it stay in TIME_WAIT for a minute
    -- after it closes and keep the port from being bound again
    local s = (tostring(host or ""):find(":", 1, true) and tcp6 or tcp4)()
    s:setoption("reuseaddr", true)
    local ok, err = s:bind(host or "127.0.0.1", port or 0)
    if not ok then s:close() error("net.listen: " .. tostring(err), 2) end
    ok, err = s:listen(128)
    if not ok then s:close() error("net.listen: " .. tostring(err), 2) end
    s:settimeout(0)
    servers[#servers + 1] = s
    local _, bound = s:getsockname()
    return tonumber(bound)
end

-- Stops listening on port (as net.listen returned it): other VMs can no
-- longer connect to it. Connections already accepted stay open. Returns
-- whether it was listening.
function net.unlisten(port)
    for i, s in ipairs(servers) do
        local _, bound = s:getsockname()
        if tonumber(bound) == port then
            table.remove(servers, i)
            s:close()
            return true
        end
    end
    return false
end

-- One attempt: the peer id, or nil and why (a policy refusal raises).
local function connect_once(host, port)
    local s = tcp()
    s:settimeout(CONNECT_TIMEOUT)
    local ok, err = s:connect(host, port)
    if not ok then
        s:close()
        return nil, "net.connect " .. tostring(host) .. ":" .. tostring(port) .. ": " .. tostring(err)
    end
    return add_peer(s, false).id
end

-- Connects to host:port and returns the peer id. With retry (seconds), a
-- failed attempt is tried again, more slowly each time, until retry seconds
-- passed: a client may start before its server listens (under the reach
-- policy an address nobody listens on yet is refused, so refusals are
-- retried too). The last failure is raised as it was (a refusal keeps its
-- POLICY_VIOLATION code).
function net.connect(host, port, retry)
    if retry ~= nil and type(retry) ~= "number" then
        error("net.connect: retry must be a number of seconds", 2)
    end
    local deadline = retry and gettime() + retry
    local pause = 0.02
    while true do
        local ok, id, err = pcall(connect_once, host, port)
        if ok and id then return id end
        local left = deadline and deadline - gettime()
        if not left or left <= 0 then
            if not ok then error(id, 0) end
            error(err .. (retry and " (retried for " .. retry .. " s)" or ""), 2)
        end
        wait({}, math.min(pause, left))
        pause = math.min(pause * 2, 0.5)
    end
end

function net.send(id, value)
    send_line(peer_of(id, "net.send"), encode(value))
    return true
end

-- Sends to every open peer; returns how many got it.
function net.broadcast(value)
    local line, n = encode(value), 0
    local ids = {}
    for id in pairs(peers) do ids[#ids + 1] = id end
    table.sort(ids)
    for _, id in ipairs(ids) do
        local p = peers[id]
        p.sock:settimeout(SEND_TIMEOUT)
        local ok = p.sock:send(line)
        p.sock:settimeout(0)
        if ok then n = n + 1 else drop(p) end
    end
    return n
end

-- Calls take() until it returns something, waiting on the sockets between
-- tries; nil once timeout seconds passed (nil timeout = wait for ever, still
-- bounded by the request's own timeout).
local function await(take, timeout)
    local deadline = timeout and gettime() + timeout
    while true do
        local v = take()
        if v ~= nil then return v end
        local left = deadline and deadline - gettime()
        if left and left <= 0 then return nil end
        wait(fds(), left)
    end
end

local function take_any()
    if ihead > itail then pump() end
    if ihead <= itail then
        local m = inbox[ihead]
        inbox[ihead] = nil
        ihead = ihead + 1
        return m
    end
end

local function has_from(from)
    for i = ihead, itail do
        if inbox[i][2] == from then return true end
    end
end

-- The oldest queued message of peer `from` (the others keep their places);
-- false once that peer is closed and nothing of it is left.
local function take_from(from)
    for pass = 1, 2 do
        for i = ihead, itail do
            local m = inbox[i]
            if m[2] == from then
                table.move(inbox, i + 1, itail, i)
                inbox[itail] = nil
                itail = itail - 1
                return m
            end
        end
        if pass == 1 then while pump() and not has_from(from) do end end
    end
    if not peers[from] then return false end
end

-- Next message and the id of its peer, or nil, "timeout" after timeout
-- seconds (nil = wait for ever, still bounded by the request's timeout).
-- With from, only a message of that peer (nil, "closed" once it is gone).
function net.recv(timeout, from)
    local m = await(from == nil and take_any or function() return take_from(from) end, timeout)
    if m == false then return nil, "closed" end
    if not m then return nil, "timeout" end
    return m[1], m[2]
end

-- Answers every message from now on, also between requests, as the server
-- job of start_server_vm does: a greeting {hello = x} with {hello = me},
-- any other message m with {from = me, re = m} (messages already queued
-- first). Replaces an on_message handler. Returns the first message it
-- answered and its peer, or nil, "timeout" after timeout seconds (nil =
-- wait for ever, still bounded by the request's timeout); serving goes on
-- either way.
function net.serve(me, timeout)
    local first
    local function answer(v, id)
        local reply = { from = me, re = v }
        if type(v) == "table" and v.hello ~= nil then reply = { hello = me } end
        local p = peers[id]
        -- a reply that cannot go (peer gone, too big) is dropped, not raised
        if p then pcall(function() send_line(p, encode(reply)) end) end
        first = first or { v, id }
    end
    handler = answer
    while ihead <= itail do
        local m = take_any()
        pcall(answer, m[1], m[2])
    end
    local m = await(function()
        while not first and pump() do end
        return first
    end, timeout)
    if not m then return nil, "timeout" end
    return m[1], m[2]
end

-- Next inbound connection's peer id, or nil, "timeout".
function net.accept(timeout)
    local id = await(function()
        if ahead > atail then accept_all() end
        while ahead <= atail do
            local id = accepted[ahead]
            accepted[ahead] = nil
            ahead = ahead + 1
            if peers[id] then return id end
        end
    end, timeout)
    if not id then return nil, "timeout" end
    return id
end

-- fn(value, peer_id) runs for each message from now on, also between
-- requests; nil goes back to queueing for net.recv.
function net.on_message(fn)
    if fn ~= nil and type(fn) ~= "function" then error("net.on_message: function expected", 2) end
    handler = fn
end

function net.peers()
    local t = {}
    for id, p in pairs(peers) do
        t[#t + 1] = { id = id, host = p.host, port = p.port, inbound = p.inbound }
    end
    table.sort(t, function(a, b) return a.id < b.id end)
    return t
end

function net.close(id)
    local p = peers[id]
    if p then drop(p) end
    return p ~= nil
end

net.MAX_MESSAGE = MSG_MAX

return net, { pump = pump, fds = fds }
