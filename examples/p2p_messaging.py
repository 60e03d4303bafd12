"""P2P messaging between VMs: server, client, P2P broadcast (LuaSocket over
loopback, networked=True) and mailboxes by name (through the manager).

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

    # futures, as in the seed
    f_srv = m.start_server_vm("peer1", port=0)
    p1_port = f_srv.result(timeout=5)
    m.create_vm("late", networked=True)
    f_cli = m.start_client_vm("late", "localhost", p1_port, "late hello")
    print("[late] connected as peer", f_cli.result(timeout=5))
    print("[peer1] got:", m.get_vm("peer1").receive_message(timeout=5))

    # mailboxes by name: any VM, networked or not
    plain = m.create_vm("plain")
    plain.execute('mailbox.send("server", {from_ = mailbox.name(), hi = true})')
    print("[server] mailbox:", server.execute("return mailbox.recv(5)"))
    m.send_to("plain", "from Python")
    print("[plain] mailbox:", plain.execute("return mailbox.recv(5)"))
