"""asyncio_usage.py: the asyncio API, printing each result.

Many VMs and thousands of calls driven from one event loop, a coroutine
callback that Lua calls while the loop keeps serving everyone else, errors,
and events read with ``async for``.

Run from the repo root after building:  /usr/bin/python3 examples/asyncio_usage.py
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from pylua_bioxen_vm import AsyncVMManager, ExecutionTimeout, LuaError  # noqa: E402

PRICES = {"apple": 3, "pear": 5, "fig": 7}


async def lookup(item: str) -> int:
    """An async data source Lua calls: it awaits, the loop keeps running."""
    await asyncio.sleep(0.01)
    return PRICES.get(item, 0)


async def main() -> None:
    async with AsyncVMManager(timeout=5.0) as m:
        vms = [await m.create_vm("worker%d" % i, echo=False, callbacks={"lookup": lookup})
               for i in range(4)]
        print("one execute          ->", await vms[0].execute("return 6 * 7"))

        # 2,000 calls in flight at once from one thread, spread over 4 VMs
        await asyncio.gather(*(vm.execute("function sq(x) return x * x end") for vm in vms))
        t = time.perf_counter()
        squares = await asyncio.gather(*(vms[i % 4].call("sq", i) for i in range(2000)))
        print("2000 calls           -> sum %d in %.2f s" % (sum(squares), time.perf_counter() - t))

        # Lua awaits an async Python callback; 12 of them overlap
        cart = "local s = 0 for _, f in ipairs({'apple', 'pear', 'fig'}) do " \
               "s = s + lookup(f) end return s"
        totals = await asyncio.gather(*(vms[i % 4].execute(cart) for i in range(12)))
        print("coroutine callbacks  ->", totals[0], "x", len(totals))

        try:
            await vms[1].execute("error('bad input')")
        except LuaError as e:
            print("LuaError             ->", str(e).splitlines()[0])

        slow = await m.create_vm("slow", timeout=0.3)
        try:
            await slow.execute("while true do end")
        except ExecutionTimeout:
            print("ExecutionTimeout     -> the loop was free meanwhile")
        async for ev in m.events(timeout=5.0):
            if ev.type == "TIMEOUT":
                print("event                ->", ev.type, ev.vm)
                break
        print("VMs                  ->", sorted(v["name"] for v in await m.list_vms()))


if __name__ == "__main__":
    asyncio.run(main())
