s/\bvmproc_create\b/vm_create/g
s/\bvmproc_destroy\b/vm_destroy/g
s/\bvmproc_disown\b/vm_disown/g
s/\bvmproc_send_raw\b/vmreq_send_raw/g
s/\bvmproc_send_op\b/vmreq_send_op/g
s/\bvmproc_send\b/vmreq_send/g
s/\bvmproc_reap_cb\b/node_reap_cb/g
s/\bvmproc_free_all\b/node_free_all/g
