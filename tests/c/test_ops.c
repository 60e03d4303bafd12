/* test_ops.c - the op table (manager/ops.def, ops.c) and req_check over it:
 * every op is found by its name and judged by its own check, the flags say
 * what the router relies on, and the request fuzzer's corpus (the
 * directory given as argv[1]) has a seed naming every op. */
#include "check.h"
#include "ops.h"
#include "validate.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static enum bx_err judge(const char *text)
{
    char err[512];
    json_t *req = json_loads(text, 0, NULL);
    enum bx_err e = req ? req_check(req, err, sizeof err) : BX_E_INTERNAL;
    json_decref(req);
    return e;
}

static void test_lookup(void)
{
    for (size_t i = 0; i < OP_COUNT; i++) {
        CHECK(op_lookup(op_table[i].name) == &op_table[i]);
        CHECK(op_table[i].check != NULL);
        for (size_t j = i + 1; j < OP_COUNT; j++)
            CHECK(strcmp(op_table[i].name, op_table[j].name) != 0);
    }
    CHECK(op_lookup(NULL) == NULL);
    CHECK(op_lookup("frobnicate") == NULL);
    CHECK(op_lookup("exe") == NULL);
}

static void test_flags(void)
{
    CHECK(op_lookup("auth")->flags & OPF_PREAUTH);
    CHECK(!(op_lookup("ping")->flags & OPF_PREAUTH));
    CHECK(op_lookup("exec")->flags & OPF_RUNS);
    CHECK(op_lookup("call")->flags & OPF_VM);
    CHECK(!(op_lookup("reset")->flags & OPF_RUNS));
    CHECK(op_lookup("cb_result")->flags & OPF_NOREPLY);
    CHECK(op_lookup("stream_ack")->flags & OPF_NOREPLY);
    CHECK(!(op_lookup("mail_send")->flags & OPF_VM));   /* mail goes by "to" */
    for (size_t i = 0; i < OP_COUNT; i++)   /* a frame without an id names its VM */
        if (op_table[i].flags & OPF_NOREPLY)
            CHECK(op_table[i].flags & OPF_VM);
}

static void test_req_check(void)
{
    char text[128];
    for (size_t i = 0; i < OP_COUNT; i++) {
        snprintf(text, sizeof text, "{\"id\":1,\"op\":\"%s\"}", op_table[i].name);
        CHECK(judge(text) != BX_E_UNKNOWN_OP);
    }
    CHECK(judge("{\"id\":1,\"op\":\"frobnicate\"}") == BX_E_UNKNOWN_OP);
    CHECK(judge("{\"id\":1}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"op\":\"ping\"}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"exec\",\"vm\":\"v\"}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"exec\",\"vm\":\"v\",\"code\":\"\"}") == BX_OK);
    CHECK(judge("{\"id\":1,\"op\":\"call\",\"vm\":\"v\",\"fn\":\"f\",\"stream\":true}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"mail_send\",\"to\":\"x\",\"value\":1}") == BX_OK);
    CHECK(judge("{\"id\":1,\"op\":\"mailbox_open\",\"name\":\"bad name\"}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"mailbox_open\",\"name\":\"ok\",\"size\":0}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"mailbox_size\":0}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"mailbox_size\":5}") == BX_OK);
    /* cpu_share: a number of CPUs from 0.01 (the kernel's 1 ms quota) to 4096 */
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":0.5}") == BX_OK);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":2}") == BX_OK);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":null}") == BX_OK);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":0}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":-1}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":0.001}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":5000}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":\"1\"}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"create\",\"name\":\"a\",\"cpu_share\":true}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"id\":1,\"op\":\"history\",\"n\":-1}") == BX_E_BAD_REQUEST);
    CHECK(judge("{\"op\":\"cb_result\"}") == BX_OK);    /* dropped, never answered */
}

static void test_args(void)
{
    char err[512];
    struct op_args a = {0};
    json_t *req = json_pack("{s:i, s:s, s:i}", "id", 1, "op", "history", "n", 5000);
    CHECK(op_lookup("history")->check(req, &a, err, sizeof err) == BX_OK && a.count == REQ_HISTORY_MAX);
    json_decref(req);
    req = json_pack("{s:s, s:s}", "op", "create", "name", "a");
    CHECK(op_lookup("create")->check(req, &a, err, sizeof err) == BX_OK && json_is_object(a.init));
    op_args_clear(&a);
    CHECK(a.init == NULL);
    json_decref(req);
}

/* Every op has a seed in the request corpus, so the fuzzer starts inside it. */
static void test_corpus(const char *dir)
{
    int seen[OP_COUNT] = {0};
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[4096], buf[16384], key[96];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "rb") : NULL;
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        for (size_t i = 0; i < OP_COUNT; i++) {
            snprintf(key, sizeof key, "\"op\":\"%s\"", op_table[i].name);
            seen[i] |= memmem(buf, n, key, strlen(key)) != NULL;
        }
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < OP_COUNT; i++) {
        if (!seen[i])
            fprintf(stderr, "no seed in %s names op %s\n", dir, op_table[i].name);
        CHECK(seen[i]);
    }
}

int main(int argc, char **argv)
{
    test_lookup();
    test_flags();
    test_req_check();
    test_args();
    if (argc > 1)
        test_corpus(argv[1]);
    return CHECK_DONE();
}
