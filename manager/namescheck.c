/* namescheck.c - pure checks for the cluster's hosts and names (namescheck.h). */
#include "namescheck.h"
#include "proto.h"

#include <stdio.h>
#include <string.h>

int namescheck_host(const char *h)
{
    return h && proto_valid_name(h) && strlen(h) <= NAMES_HOST_MAX && !strchr(h, '.');
}

int namescheck_beat(json_t *msg, struct beat *b)
{
    json_t *v = json_object_get(msg, "vms"), *e = json_object_get(msg, "executions");
    json_t *l = json_object_get(msg, "load");
    b->name = json_string_value(json_object_get(msg, "name"));
    if (!namescheck_host(b->name) || !json_is_integer(v) || !json_is_integer(e) ||
        !json_is_number(l))
        return -1;
    b->vms = json_integer_value(v);
    b->executions = json_integer_value(e);
    b->load = json_number_value(l);
    b->leaving = json_is_true(json_object_get(msg, "leaving"));
    return 0;
}

int namescheck_record(json_t *rec)
{
    return json_is_object(rec) && namescheck_host(json_string_value(json_object_get(rec, "host")));
}

int namescheck_announce(json_t *msg, const char **op, const char **name, const char **from)
{
    *op = json_string_value(json_object_get(msg, "op"));
    *name = json_string_value(json_object_get(msg, "name"));
    *from = json_string_value(json_object_get(msg, "host"));
    if (!*op || !proto_valid_name(*name) || !namescheck_host(*from))
        return -1;
    if (strcmp(*op, "set") == 0)
        return namescheck_record(json_object_get(msg, "record")) ? 0 : -1;
    if (strcmp(*op, "failover") == 0) {
        struct failover_msg f;
        return namescheck_failover(msg, &f);
    }
    return strcmp(*op, "del") == 0 ? 0 : -1;
}

/* The owner is compared with client identities ("uid:N", "token:NAME"),
 * so it must fit where they live and be one: anything else is a record no
 * socket client could own, dropped rather than delivered to nobody. */
static int ident_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    return n > 0 && n < NAMES_IDENT_MAX &&
           (strncmp(id, "uid:", 4) == 0 || strncmp(id, "token:", 6) == 0);
}

int namescheck_failover(json_t *msg, struct failover_msg *f)
{
    json_t *rec = json_object_get(msg, "record"), *pid = json_object_get(msg, "pid");
    const char *op = json_string_value(json_object_get(msg, "op"));
    f->name = json_string_value(json_object_get(msg, "name"));
    f->host = json_string_value(json_object_get(msg, "host"));
    f->from = json_string_value(json_object_get(msg, "from"));
    f->owner = json_string_value(json_object_get(rec, "owner"));
    f->shared = json_is_true(json_object_get(rec, "shared"));
    f->pid = json_is_integer(pid) ? json_integer_value(pid) : -1;
    if (!op || strcmp(op, "failover") != 0 || !proto_valid_name(f->name) ||
        !namescheck_host(f->host) || !namescheck_host(f->from) || !namescheck_record(rec) ||
        strcmp(json_string_value(json_object_get(rec, "host")), f->host) != 0 ||
        !ident_ok(f->owner) || f->pid < 0 || f->pid > 0x7fffffff)
        return -1;
    return 0;
}

void namescheck_key_of(const char *name, char *key)
{
    for (; *name; name++) {
        if (*name == ':' || *name == '.')
            key += sprintf(key, "=%02X", (unsigned char)*name);
        else
            *key++ = *name;
    }
    *key = 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int namescheck_name_of(const char *key, char *name, size_t n)
{
    size_t i = 0;
    while (*key) {
        char c = *key;
        if (c == '=') {
            int hi = hexval(key[1]), lo = hi < 0 ? -1 : hexval(key[2]);
            if (lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            key += 3;
        } else {
            key++;
        }
        if (i + 1 >= n)
            return -1;
        name[i++] = c;
    }
    name[i] = 0;
    return proto_valid_name(name) ? 0 : -1;
}
