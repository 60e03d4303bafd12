/* fuzz_mail.c - libFuzzer target for what another host's manager sends to
 * this one's mail subjects (mailremote.c): the payload is parsed as the
 * cluster link does (proto_parse), then read as a mail batch and as an ack
 * batch with mailcheck.c's pure checks, item by item.
 *
 * Invariants: a batch that passes names a host of 1..64 name characters and
 * holds an array; a mail item that passes has a seq >= 0, a valid target
 * name, a sender name that fits, bytes in 1..2^30 and a timeout that is -1
 * or >= 0; an ack that passes is accepted (no code), PARKED, or carries a
 * code and a message. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *msg = proto_parse((const char *)data, size, err, sizeof err);
    check_batch(msg, "origin", "mails", check_mail);
    check_batch(msg, "host", "acks", check_ack);
    json_decref(msg);
    return 0;
}
