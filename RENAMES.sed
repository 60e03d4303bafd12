# Names outside the ops helper's files that its change leaves stale (apply to manager/manager.h):
# pool_client_op is gone; the pool ops are pool_op_run / pool_op_config / pool_op_warmup, named in manager/ops.def.
/^int pool_client_op(struct client \*c, json_t \*id, const char \*op, json_t \*req);$/d
