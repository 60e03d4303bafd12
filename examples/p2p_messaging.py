"""P2P messaging between VMs: server, client, P2P broadcast (LuaSocket over
loopback, networked=True), mailboxes by name (through the manager), and the
seed's futures example as written: a server job, a client job and a p2p job
on ports 8080 and 8081, submitted in any order.

Run from the repo root after building:  /usr/bin/python3 examples/p2p_messaging.py
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from pylua_bioxen_vm import VMManager  # noqa: E402

with VMManager() as m:
    server = m.create_vm("server", networked=True)
    client = m.create_vm("client", networked=True)

    # server and client
    port = server.start_server(port=0)
    client.connect_to("localhost", port)
    client.send_message({"text": "Hello from client!", "n": 1})
    print("[server] got:", server.receive_message(timeout=5))
    server.send_message("welcome")                  # replies to the last sender
    print("[client] got:", client.receive_message(timeout=5))

    # P2P broadcast: two peers join the server, which broadcasts to all three
    peers = [m.create_vm("peer%d" % i, networked=True) for i in (1, 2)]
    for p in peers:
        p.establish_p2p_with(server)
    print("[server] broadcast reached", server.broadcast("Hello network!"), "peers")
    for vm in [client] + peers:
        print("[%s] got: %s" % (vm.name, vm.receive_message(timeout=5)))

    # mailboxes by name: any VM, networked or not
    plain = m.create_vm("plain")
    plain.execute('mailbox.send("server", {from_ = mailbox.name(), hi = true})')
    print("[server] mailbox:", server.execute("return mailbox.recv(5)"))
    m.send_to("plain", "from Python")
    print("[plain] mailbox:", plain.execute("return mailbox.recv(5)"))

# The seed's futures example, verbatim (bar the import, which names the
# package with dashes): three jobs, each a Future.  The client and p2p jobs
# retry their connect while the server is not listening yet.
with VMManager() as manager:
    # Server VM
    server_vm = manager.create_vm("server", networked=True)
    server_future = manager.start_server_vm("server", port=8080)
    
    # Client VM  
    client_vm = manager.create_vm("client", networked=True)
    client_future = manager.start_client_vm("client", "localhost", 8080, "Hello!")
    
    # P2P VM
    p2p_vm = manager.create_vm("p2p", networked=True)
    p2p_future = manager.start_p2p_vm("p2p", 8081, "localhost", 8080)

    # What the jobs resolve with: the server's first message (the client's
    # "Hello!" or the p2p greeting, whichever came first), the server's
    # reply to the client, and the greeting the p2p VM got back.
    print("[server job] first message:", server_future.result(timeout=15))
    print("[client job] server replied:", client_future.result(timeout=15))
    print("[p2p job] peer's greeting:", p2p_future.result(timeout=15))

    # The server keeps serving after its job resolved.
    manager.create_vm("late", networked=True)
    late_future = manager.start_client_vm("late", "localhost", 8080, "late hello")
    print("[late job] server replied:", late_future.result(timeout=15))

# The same jobs submitted the other way round: the client and p2p jobs start
# before anything listens on 8080 and connect once the server does.
with VMManager() as manager:
    client_vm = manager.create_vm("client", networked=True)
    client_future = manager.start_client_vm("client", "localhost", 8080, "Hello!")
    p2p_vm = manager.create_vm("p2p", networked=True)
    p2p_future = manager.start_p2p_vm("p2p", 8081, "localhost", 8080)
    server_vm = manager.create_vm("server", networked=True)
    server_future = manager.start_server_vm("server", port=8080)
    print("[client first] server replied:", client_future.result(timeout=15))
    print("[client first] p2p got:", p2p_future.result(timeout=15))
    print("[client first] server's first message:", server_future.result(timeout=15))
