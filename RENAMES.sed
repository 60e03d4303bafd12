# Python client (branch py): module paths that moved; no code outside
# python/pylua_bioxen_vm imported any of them (tests/examples/bench use the
# top-level names, which are unchanged).
s/pylua_bioxen_vm\.cli_\(common\|info\|repl\|run\|serve\)\b/pylua_bioxen_vm.cli.\1/g
s/pylua_bioxen_vm\.aio_more\b/pylua_bioxen_vm.aio.stream/g
s/pylua_bioxen_vm\.luaward\b/pylua_bioxen_vm.compat.luaward/g
s/\bcli_\(common\|info\|repl\|run\|serve\)\.py\b/cli\/\1.py/g
s/\baio_more\.py\b/aio\/stream.py/g
s/\bluaward\.py\b/compat\/luaward.py/g
# private helpers that moved or were renamed
s/\bvm\._to_result\b/results.to_result/g
s/\bvm\._TRANSFORMS\b/results.TRANSFORMS/g
s/\bmanager\._NAME_RE\b/mailbox.NAME_RE/g
s/\bmanager\._connect\b/connection.connect/g
s/\b_close_async()/close_async()/g
s/\baio\._thread_callback\b/aio.hub.thread_callback/g
