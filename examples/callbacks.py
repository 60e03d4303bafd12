"""callbacks.py: Lua calling Python functions, and Python errors raised in Lua.

Run from the repo root after building:  /usr/bin/python3 examples/callbacks.py
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from pylua_bioxen_vm import VMManager  # noqa: E402

PRICES = {"apple": 0.5, "pear": 0.75}


def log(*parts):
    print("  [Python got]", *parts)


def price(item):
    if item not in PRICES:
        raise ValueError("no price for %r" % item)
    return PRICES[item]


def main() -> None:
    with VMManager() as manager:
        vm = manager.create_vm("shop", callbacks={"log": log, "price": price},
                               timeout=5.0)
        total = vm.execute("""
            local basket = {apple = 4, pear = 2}
            local total = 0
            for item, n in pairs(basket) do
                local p = price(item)
                log(item, n, p)
                total = total + n * p
            end
            return total
        """)
        print("total from Lua:", total)
        ok, err = vm.execute("return pcall(price, 'durian')")
        print("pcall(price, 'durian') ->", ok, "|", err)
        # A callback may use another VM: Python sits between them.
        calc = manager.create_vm("calc")
        calc.execute("function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end")
        helper = manager.create_vm("asker", callbacks={"fib": lambda n: calc.call("fib", n)})
        print("fib(20) via another VM:", helper.execute("return fib(20)"))


if __name__ == "__main__":
    main()
