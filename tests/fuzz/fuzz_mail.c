/* fuzz_mail.c - libFuzzer target for what another host's manager sends to
 * this one's mail subjects (mailremote.c): the payload is parsed as the
 * cluster link does (proto_parse), then read as a mail batch and as an ack
 * batch with mailcheck.c's pure checks, item by item.
 *
 * Invariants: a batch that passes names a host of 1..64 name characters and
 * holds an array; a mail item that passes has a seq >= 0, a valid target
 * name, a sender name that fits, bytes in 1..2^30 and a timeout that is -1
 * or >= 0; an ack that passes is accepted (no code), PARKED, or carries a
 * code and a message. Also the node's own mail/post frames as the manager's
 * fast path reads them: never differently from the generic parse. */
#include "mailcheck.h"

#include <stdint.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_mail(json_t *it)
{
    struct mailcheck_mail m;
    if (mailcheck_mail(it, &m) < 0)
        return;
    CHECK(m.seq >= 0 && m.to && proto_valid_name(m.to) && m.from);
    CHECK(strlen(m.from) <= BX_NAME_MAX + 1);
    CHECK(m.bytes >= 1 && m.bytes <= ((size_t)1 << 30));
    CHECK(m.timeout == -1 || m.timeout >= 0);
    CHECK(m.value != NULL);
}

static void check_ack(json_t *it)
{
    long long seq;
    const char *code, *text;
    if (mailcheck_ack(it, &seq, &code, &text) < 0)
        return;
    CHECK(seq >= 0);
    CHECK(!code || strcmp(code, "PARKED") == 0 || text);
}

static void check_batch(json_t *msg, const char *hkey, const char *akey, void (*each)(json_t *))
{
    json_t *items, *it;
    size_t i;
    const char *host = mailcheck_batch(msg, hkey, akey, &items);
    if (!host)
        return;
    CHECK(strlen(host) >= 1 && strlen(host) <= 64 && json_is_array(items));
    json_array_foreach(items, i, it)
        each(it);
}

/* A node frame the manager's fast path takes (mailcheck_node_fast) reads
 * exactly as the generic parse would: same K, same target, equal value,
 * and no other key. */
static void check_fast(const char *line, size_t len, json_t *msg)
{
    struct mailcheck_fast f;
    if (!mailcheck_node_fast(line, len, &f))
        return;
    static const char *const key[] = {"mail", "post", "mail_pull"};
    CHECK(msg != NULL);
    json_t *k = json_object_get(msg, key[f.kind]);
    CHECK(json_is_integer(k) && json_integer_value(k) == f.k && f.k >= 0);
    if (f.kind == MAILFAST_PULL) {
        CHECK(f.max == mailcheck_max(msg));
        CHECK(f.timeout == mailcheck_timeout(msg));
        CHECK(json_object_size(msg) == (json_object_get(msg, "timeout") ? 3u : 2u));
        return;
    }
    CHECK(json_object_size(msg) == (f.kind == MAILFAST_POST ? 2u : 3u));
    CHECK(f.kind == MAILFAST_POST || (proto_valid_name(f.to) &&
          strcmp(json_string_value(json_object_get(msg, "to")), f.to) == 0));
    CHECK(json_equal(json_object_get(msg, "value"), f.value));
    json_decref(f.value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *msg = proto_parse((const char *)data, size, err, sizeof err);
    check_batch(msg, "origin", "mails", check_mail);
    check_batch(msg, "host", "acks", check_ack);
    check_fast((const char *)data, size, msg);
    json_decref(msg);
    return 0;
}
