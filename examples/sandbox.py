"""sandbox.py: limits, a policy and refused escapes, showing which layer stopped each.

Run from the repo root after building:  /usr/bin/python3 examples/sandbox.py
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from pylua_bioxen_vm import BioxenError, Policy, VMManager  # noqa: E402


# which layer raises which error (docs/security.md)
LAYERS = {
    "MemoryLimitExceeded": "counting allocator",
    "InstructionLimitExceeded": "instruction count hook",
    "ExecutionTimeout": "wall timeout (hook, then the manager's kill)",
    "LuaError": "stripped standard library",
    "PolicyViolation": "policy",
    "IsolationUnavailable": "network namespace",
}


def attempt(vm, what, code):
    """Run code; print its result or the error and which layer raised it."""
    try:
        value = vm.execute(code)
        print("  %-40s ran: %r" % (what, value))
    except BioxenError as e:
        name = type(e).__name__
        msg = str(e).splitlines()[0].split(": ", 1)[-1]
        print("  %-40s stopped by the %s (%s)\n  %-40s   %s"
              % (what, LAYERS.get(name, "sandbox"), name, "", msg[:100]))


def limits(manager):
    print("\n== limits (every VM): memory, instructions, wall time, output")
    vm = manager.create_vm("limited", memory_limit=8 << 20, instruction_limit=5_000_000,
                           timeout=1.0, max_output=1024, echo=False)
    attempt(vm, "string.rep memory bomb", "return #string.rep('x', 2^30)")
    attempt(vm, "infinite Lua loop", "while true do end")
    attempt(vm, "backtracking pattern inside one C call",
            "return string.find(string.rep('a', 30000), '.-.-.-.-b')")
    r = vm.execute_result("for i = 1, 1e5 do print(i) end return 'done'")
    print("  %-40s ran; output capped at %d bytes (truncated: %s)"
          % ("print flood", len(r.output), r.output_truncated))
    attempt(vm, "the VM afterwards", "return 'still usable'")


def escapes(manager):
    print("\n== the stripped standard library (every VM)")
    vm = manager.create_vm("plain", timeout=2.0, echo=False)
    attempt(vm, "os.execute('id')", "return os.execute('id')")
    attempt(vm, "io.open('/etc/passwd')", "return io.open('/etc/passwd')")
    attempt(vm, "load of precompiled bytecode (text-only)", "return load('\\27Lua', 'x', 'b')")
    attempt(vm, "require 'socket' (networking is off)", "return require('socket')")


def isolation(manager):
    print("\n== full isolation: namespaces, seccomp, uid drop, cgroup")
    vm = manager.create_vm("boxed", full_isolation=True, memory_limit=16 << 20,
                           timeout=2.0, restart="on-crash", echo=False)
    iso = vm.isolation
    print("  namespaces: %s" % iso["namespaces"])
    print("  seccomp allow-list: %s, no_new_privs: %s" % (iso["seccomp"], iso["no_new_privs"]))
    print("  runs as uid %s gid %s" % (iso["uid"], iso["gid"]))
    cg = iso.get("cgroup")
    print("  cgroup: %s" % (cg if cg else "none here (%s)" % iso.get("cgroup_unavailable")))
    with open("/proc/%d/status" % vm.pid) as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    print("  /proc/%d/status: Uid %s, Seccomp %s, NoNewPrivs %s"
          % (vm.pid, status["Uid"].split()[0], status["Seccomp"].strip(),
             status["NoNewPrivs"].strip()))
    attempt(vm, "turning networking on", "return net ~= nil")
    try:
        vm.start_server(0)
    except BioxenError as e:
        print("  %-40s stopped by the %s (%s)"
              % ("vm.start_server(0)", LAYERS.get(type(e).__name__), type(e).__name__))


def policy(manager, data_dir):
    print("\n== a policy: read-only files by glob, hot reload")
    allowed = os.path.join(data_dir, "scores.csv")
    with open(allowed, "w") as f:
        f.write("alice,3\nbob,5\n")
    events = []
    manager.on("SECURITY_VIOLATION", lambda ev: events.append(ev))
    manager.on("POLICY_HOTLOAD", lambda ev: events.append(ev))
    p = Policy(mem="16MiB").allow_fs(os.path.join(data_dir, "*.csv"))
    vm = manager.create_vm("reader", policy=p, timeout=2.0, echo=False)
    attempt(vm, "fs.lines on an allowed file",
            "local n = 0 for line in fs.lines(%r) do n = n + 1 end return n" % allowed)
    attempt(vm, "fs.read('/etc/passwd')", "return fs.read('/etc/passwd')")
    attempt(vm, "fs.read with '..'", "return fs.read(%r)" % (data_dir + "/../etc/passwd"))
    vm.set_policy(Policy(mem="16MiB"))
    attempt(vm, "the same file after set_policy() revoked it",
            "return fs.read(%r)" % allowed)
    for ev in manager.events(timeout=1.0):
        events.append(ev)
    kinds = sorted({e["type"] if isinstance(e, dict) else e.type for e in events})
    print("  events seen: %s" % ", ".join(kinds))


def main() -> None:
    with VMManager() as manager, tempfile.TemporaryDirectory() as data_dir:
        limits(manager)
        escapes(manager)
        isolation(manager)
        policy(manager, data_dir)
        print("\nthe manager still answers: %s" % manager.ping())


if __name__ == "__main__":
    main()
