/* test_cluster_nats.c - manager/cluster.c against a real nats-server
 * (started here: JetStream on, a temp store, a free loopback port), driven
 * from a libevent loop as the manager drives it: connect, subscribe and
 * publish, a payload over the server's max refused whole, a request to a
 * subject nobody serves seen as "no responders", a deferred job using the
 * names bucket, then the server killed: down reported, publish refused
 * fast ("cluster unavailable"). Skips (77) without nats-server. */
#include "check.h"
#include "cluster.h"

#include <nats/nats.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct event_base *base;
static pid_t nats_pid;
static int step, ups, downs, echoed, no_resp, job_done, kv_ok;
static char err[512];

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) < 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static int start_nats(int port, const char *dir)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    if ((nats_pid = fork()) == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p, "-js", "-sd", dir,
               (char *)NULL);
        _exit(127);
    }
    return nats_pid > 0 ? 0 : -1;
}

static void on_echo(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)arg;
    CHECK(!strcmp(subject, "bxt.echo") && reply && !strcmp(reply, "bxt.r.1"));
    CHECK(msg && json_integer_value(json_object_get(msg, "n")) == 7);
    echoed++;
}

static void on_inbox(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    if (!msg && cluster_msg_no_responders())
        no_resp++;
}

static void kv_work(void *arg)
{
    (void)arg;
    uint64_t rev = 0;
    kvStore *kv = cluster_kv();
    /* one winner per name: the second create of the same key conflicts */
    kv_ok = kv && kvStore_CreateString(&rev, kv, "vm1", "m1") == NATS_OK &&
            kvStore_CreateString(&rev, kv, "vm1", "m2") != NATS_OK;
}

static void kv_done(void *arg)
{
    (void)arg;
    job_done++;
}

static void when_up(void)
{
    char subj[64];
    json_t *big = json_pack("{s:s%}", "pad", "", (size_t)0);
    size_t max = cluster_max_payload();
    char *pad = malloc(max + 1);
    memset(pad, 'x', max);
    pad[max] = 0;
    json_object_set_new(big, "pad", json_string(pad));
    free(pad);
    CHECK(max >= 1024);
    CHECK(cluster_subject(subj, sizeof subj, "echo") == 0 && !strcmp(subj, "bxt.echo"));
    CHECK(cluster_subject(subj, 8, "%s", "much-too-long") == -1);
    CHECK(cluster_subscribe("bxt.echo", NULL, on_echo, NULL) == 0);
    CHECK(cluster_subscribe("bxt.inbox.>", NULL, on_inbox, NULL) == 0);
    json_t *m = json_pack("{s:i}", "n", 7);
    CHECK(cluster_publish("bxt.echo", "bxt.r.1", m, err, sizeof err) == 0);
    CHECK(cluster_publish("bxt.nobody", "bxt.inbox.1", m, err, sizeof err) == 0);
    CHECK(cluster_publish("bxt.echo", NULL, big, err, sizeof err) == -1);
    CHECK(strstr(err, "larger than the cluster's max payload") != NULL);
    json_decref(m);
    json_decref(big);
    CHECK(cluster_defer(kv_work, kv_done, NULL) == 0);
}

static void on_state(int up, const char *why, void *arg)
{
    (void)arg; (void)why;
    if (up) {
        ups++;
        when_up();
    } else
        downs++;
}

static void tick(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    static int ticks;
    struct event *self = arg;
    struct timeval tv = {0, 20000};
    if (++ticks > 1000) {       /* 20 s: something never came */
        fprintf(stderr, "deadline: step %d ups %d echoed %d no_resp %d job %d\n",
                step, ups, echoed, no_resp, job_done);
        event_base_loopbreak(base);
        return;
    }
    if (step == 0 && echoed && no_resp && job_done) {
        kill(nats_pid, SIGKILL);
        waitpid(nats_pid, NULL, 0);
        step = 1;
    } else if (step == 1 && downs) {
        json_t *m = json_pack("{s:i}", "n", 1);
        CHECK(!cluster_up() && cluster_max_payload() == 0);
        CHECK(cluster_publish("bxt.echo", NULL, m, err, sizeof err) == -1);
        CHECK(!strcmp(err, "cluster unavailable"));
        json_decref(m);
        cluster_quiesce();
        step = 2;
    } else if (step == 2 && cluster_quiet()) {
        event_base_loopbreak(base);
        return;
    }
    evtimer_add(self, &tv);
}

int main(void)
{
    char dir[] = "/tmp/bioxen-test-nats.XXXXXX", url[64];
    int port = free_port();
    if (system("command -v nats-server >/dev/null 2>&1") != 0) {
        printf("nats-server not installed: skipped\n");
        return 77;
    }
    CHECK(mkdtemp(dir) != NULL && port > 0 && start_nats(port, dir) == 0);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    struct cluster_opts o = {.urls = url, .host = "t1", .prefix = "bxt"};
    cluster_init_threads();
    base = event_base_new();
    CHECK(cluster_on_state(on_state, NULL) == 0);
    CHECK(cluster_start(base, &o, err, sizeof err) == 0);
    CHECK(cluster_enabled() && !strcmp(cluster_self(), "t1"));
    struct event *t = event_new(base, -1, 0, tick, event_self_cbarg());
    struct timeval tv = {0, 20000};
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    CHECK(ups == 1 && echoed == 1 && no_resp == 1 && job_done == 1 && kv_ok);
    CHECK(downs == 1 && step == 2);
    cluster_stop();
    event_free(t);
    event_base_free(base);
    if (step < 1) {
        kill(nats_pid, SIGKILL);
        waitpid(nats_pid, NULL, 0);
    }
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    CHECK(system(rm) == 0);
    return CHECK_DONE();
}
