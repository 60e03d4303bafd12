"""Many VMs and many requests in flight."""

T = 120.0


def test_hundred_vms_at_once(manager):
    futs = [manager.create_vm_async("vm%03d" % i) for i in range(100)]
    vms = [f.result(T) for f in futs]
    assert len({vm.stats()["pid"] for vm in vms[:5]}) == 5
    results = [vm.execute_async("return %d * 2" % i) for i, vm in enumerate(vms)]
    assert [f.result(T) for f in results] == [i * 2 for i in range(100)]
    assert len(manager.list_vms()) >= 100
    assert manager.shutdown_all() == 100
    assert manager.list_vms() == []


def test_2000_pipelined_calls_in_order(manager):
    vm = manager.create_vm("pipe")
    futs = [vm.execute_async("n = (n or 0) + 1 return n, %d" % i) for i in range(2000)]
    for i, f in enumerate(futs):
        assert f.result(T) == (i + 1, i)
