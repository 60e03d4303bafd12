"""basic_usage.py: the SPEC §4 tour of pylua_bioxen_vm, printing each result.

Run from the repo root after building:  /usr/bin/python3 examples/basic_usage.py
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from pylua_bioxen_vm import ExecutionTimeout, LuaError, VMManager  # noqa: E402


def main() -> None:
    with VMManager() as manager:                     # starts a private manager
        vm = manager.create_vm("vm1", memory_limit=16 << 20,
                               instruction_limit=10_000_000, timeout=2.0)
        print("math.sqrt(16)        ->", vm.execute("return math.sqrt(16)"))
        fut = vm.execute_async("return 6 * 7")
        print("execute_async 6*7    ->", fut.result(timeout=10))
        vm.execute("function greet(n) return 'Hello, ' .. n end")
        print("call greet           ->", vm.call("greet", "Python"))
        print("function_exists      ->", vm.function_exists("greet"))
        vm.set_globals({"user": "alice"})
        print("get_global user      ->", vm.get_global("user"))
        print("multiple returns     ->", vm.execute("return 1, 'two', {3, 4}"))
        print("tables become dicts  ->", vm.execute("return {name = 'x', [10] = true}"))
        r = vm.execute_result("print('captured output') return 1")
        print("execute_result       -> value=%r output=%r %.3f ms" %
              (r.value, r.output, r.duration_ms))
        print("string.format        ->", vm.call("string.format", "%05.1f", 3.14159))
        try:
            vm.execute("error('something broke')")
        except LuaError as e:
            print("LuaError             ->", e.lua_message)
        try:
            vm.execute("while true do end", timeout=0.2, instruction_limit=0)
        except ExecutionTimeout as e:
            print("ExecutionTimeout     ->", "restarted" if e.restarted else "VM still usable")
        print("state survives       ->", vm.get_global("user"))
        st = vm.stats()
        print("stats                -> pid=%s mem=%s B executions=%s" %
              (st["pid"], st["mem_bytes"], st["executions"]))
        print("list_vms             ->", [v["name"] for v in manager.list_vms()])
        print("shutdown_all         ->", manager.shutdown_all(), "VM(s) destroyed")


if __name__ == "__main__":
    main()
