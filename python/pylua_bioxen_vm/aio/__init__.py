"""asyncio front end: AsyncVMManager, AsyncVM, AsyncMailbox, AsyncStream
and AsyncSession, one module each (manager, vm, mailbox, stream, session)
over the Hub (hub.py).

    async with AsyncVMManager() as m:
        vm = await m.create_vm("vm1", timeout=2.0)
        print(await vm.execute("return 6 * 7"))          # 42

No second protocol stack: an AsyncVMManager owns a plain VMManager, and every
coroutine is ``await hub.wrap(sync_twin.x_async(...))``: the same request,
through the same Connection (connection.py), whose reader (reader.py)
resolves the same concurrent.futures.Future as for the Futures API.  Where a
coroutine cannot be that (``recv``, streams, events), it drives the sync
twin's own state machine on the loop instead of a copy of it.  The Hub
carries the results onto the event loop:

  event loop --request()--> Connection --> manager
  reader thread --Future done--> Hub.post: append to a locked list; if
                                 no drain is queued yet, loop.call_soon_threadsafe(drain)
  event loop --Hub._drain--> set every finished asyncio future at once

So no thread is made or parked per call, and a burst of N replies costs the
loop one wake-up, not N (asyncio.wrap_future would schedule one callback per
reply).  The reader never waits on the loop: a done-callback only appends to
a list, so thousands of awaits in flight cannot deadlock it.  Pushed events
take the same road from Core's event thread (one "*" handler) into a bounded
buffer read by ``async for ev in m.events()``.

Cancelling a task that awaits a request cancels only its asyncio future: the
request is on the wire and cannot be taken back, its reply arrives later and
is dropped, and the connection carries on.

Blocking steps (starting the embedded manager, connecting, closing) run once
each in the loop's default executor.  An AsyncVMManager belongs to the loop
that opened it; ``m.sync`` is the underlying VMManager, usable from other
threads (never block the loop with it).
"""

from .hub import Hub  # noqa: F401 - pylua_bioxen_vm.aio.Hub, as before
from .mailbox import AsyncMailbox
from .manager import AsyncVMManager
from .session import AsyncSession
from .stream import AsyncStream
from .vm import AsyncVM

__all__ = ["AsyncVMManager", "AsyncVM", "AsyncMailbox", "AsyncStream", "AsyncSession"]
