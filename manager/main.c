/* main.c - bioxen-manager: arguments, wiring of the event loop, signals and
 * clean shutdown. Everything else is reached from the callbacks set here. */
#include "manager.h"
#include "cgroup.h"
#include "cluster.h"
#include "hosts.h"
#include "broker.h"
#include "names.h"
#include "remote.h"
#include "mailbox.h"
#include "mailremote.h"
#include "policy.h"
#include "promhttp.h"
#include "spare.h"
#include "timer.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

#define DRAIN_MAX_S 30.0    /* stdin closed: longest wait for owed replies */
#define STOP_TICK 0.01     /* seconds between checks that shutdown is done */

struct manager *mgr;
static const char *metrics_host = "127.0.0.1";
static int metrics_port = -1;  /* -1: no Prometheus endpoint */
static struct cluster_opts copts;   /* urls NULL: no cluster */
static char host_buf[256];

static void signal_cb(evutil_socket_t sig, short ev, void *arg);
static void stdin_cb(evutil_socket_t fd, short ev, void *arg);
static void stop_tick_cb(evutil_socket_t fd, short ev, void *arg);

/* One line per flag for --help; docs/cli.md says more about each. */
static const char flags_help[] =
    "  --socket PATH        listen on this Unix socket (required; owner-only by default)\n"
    "  --tcp HOST:PORT      also listen on TCP (PORT 0: any free port, in hello's \"tcp\")\n"
    "  --token-file FILE    NAME:TOKEN lines; a TCP client presenting TOKEN is token:NAME\n"
    "  --vmnode PATH        the node binary (default: $BIOXEN_VMNODE, then beside us)\n"
    "  --exit-with-stdin    stop once stdin closes, after answering what was read\n"
    "  --max-frame BYTES    longest line read from a client or node (default 16 MiB)\n"
    "  --grace SECONDS      past a call's timeout, wait this long, then kill its node\n"
    "  --module-dir DIR     where modules granted by a policy are read from\n"
    "  --no-cgroups         no cgroup per node (rlimits and the Lua allocator remain)\n"
    "  --spares N           nodes kept started ahead of creates (default 2; 0: none)\n"
    "  --no-zygote          exec every node instead of forking it from a zygote\n"
    "  --metrics-port PORT  serve Prometheus GET /metrics (0: any free port)\n"
    "  --metrics-host HOST  the address for --metrics-port (default 127.0.0.1)\n"
    "  --admin IDENTITY     also an admin (uid:N or token:NAME; repeatable)\n"
    "  --socket-mode OCTAL  permissions of the Unix socket (default: owner only)\n"
    "  --socket-group GROUP group of the Unix socket (mode 0660 unless --socket-mode)\n"
    "  --cluster URLS       join a cluster over NATS (nats://HOST:PORT[,...])\n"
    "  --host-name NAME     this manager's name in the cluster (default: the host name)\n"
    "  --cluster-name PREFIX  subject prefix and bucket name of the cluster (default bioxen)\n"
    "  --cluster-creds FILE NATS credentials (.creds: user JWT and nkey seed)\n"
    "  --cluster-nkey FILE  a NATS user nkey: its seed and public key (nk -gen user -pubout)\n"
    "  --cluster-token-file FILE  a NATS token, read from FILE\n"
    "  --cluster-ca FILE    TLS to NATS, trusting this CA\n"
    "  --cluster-cert FILE  client certificate for mutual TLS (with --cluster-key)\n"
    "  --cluster-key FILE   its private key\n"
    "  -h, --help           print this and exit\n";

/* --help asked for it: stdout, the flags too, status 0; a bad command
 * line: stderr, status 2. */
static void usage_exit(int status)
{
    FILE *out = status ? stderr : stdout;
    fprintf(out, "usage: bioxen-manager --socket PATH [--tcp HOST:PORT --token-file FILE]\n"
                 "       [--vmnode PATH] [--exit-with-stdin] [--max-frame BYTES] [--grace SECONDS]\n"
                 "       [--module-dir DIR] [--no-cgroups] [--spares N] [--no-zygote]\n"
                 "       [--metrics-port PORT [--metrics-host HOST]]\n"
                 "       [--admin IDENTITY]... [--socket-mode OCTAL] [--socket-group GROUP]\n"
                 "       [--cluster URLS [--host-name NAME] [--cluster-name PREFIX] [--cluster-...]]\n"
                 "       [--help]\n");
    if (!status)
        fputs(flags_help, out);
    exit(status);
}

static void usage(void)
{
    usage_exit(2);
}

/* --vmnode, else $BIOXEN_VMNODE, else bioxen-vmnode beside our executable,
 * else ../vmnode/bioxen-vmnode (the layout of an in-tree build). */
static const char *find_vmnode(const char *opt)
{
    static char path[PATH_MAX];
    if (opt)
        return opt;
    if (getenv("BIOXEN_VMNODE") && *getenv("BIOXEN_VMNODE"))
        return getenv("BIOXEN_VMNODE");
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 64);
    if (n <= 0)
        return "bioxen-vmnode";
    path[n] = 0;
    char *slash = strrchr(path, '/');
    char *dir_end = slash ? slash + 1 : path;
    strcpy(dir_end, "bioxen-vmnode");
    if (access(path, X_OK) == 0)
        return path;
    strcpy(dir_end, "../vmnode/bioxen-vmnode");
    if (access(path, X_OK) == 0)
        return path;
    strcpy(dir_end, "bioxen-vmnode");   /* report the documented place */
    return path;
}

static void bad_arg(const char *why)
{
    fprintf(stderr, "bioxen-manager: %s\n", why);
    exit(2);
}

/* --socket-mode: octal permission bits, at most 0777. */
static unsigned parse_mode(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 8);
    if (!*s || *end || v == 0 || v > 0777)
        bad_arg("--socket-mode wants octal permission bits such as 0660");
    return (unsigned)v;
}

/* 0..65535 (0: any free port, reported by "hello" and "metrics"). */
static int parse_port(const char *s)
{
    char *end;
    long p = strtol(s, &end, 10);
    if (!*s || *end || p < 0 || p > 65535)
        usage();
    return (int)p;
}

/* the long options; "h" is the only short one */
static const struct option opts[] = {
    {"socket", 1, 0, 's'}, {"tcp", 1, 0, 't'}, {"token-file", 1, 0, 'k'},
    {"vmnode", 1, 0, 'v'}, {"exit-with-stdin", 0, 0, 'e'},
    {"max-frame", 1, 0, 'f'}, {"grace", 1, 0, 'g'}, {"module-dir", 1, 0, 'm'},
    {"no-cgroups", 0, 0, 'c'}, {"metrics-port", 1, 0, 'P'},
    {"metrics-host", 1, 0, 'H'}, {"spares", 1, 0, 'p'}, {"help", 0, 0, 'h'},
    {"no-zygote", 0, 0, 'Z'},
    {"admin", 1, 0, 'A'}, {"socket-mode", 1, 0, 'M'}, {"socket-group", 1, 0, 'G'},
    {"cluster", 1, 0, 'C'}, {"host-name", 1, 0, 'N'}, {"cluster-name", 1, 0, 'X'},
    {"cluster-creds", 1, 0, 'R'}, {"cluster-token-file", 1, 0, 'T'}, {"cluster-nkey", 1, 0, 'Y'},
    {"cluster-ca", 1, 0, 'Q'}, {"cluster-cert", 1, 0, 'E'}, {"cluster-key", 1, 0, 'K'},
    {0, 0, 0, 0}};

static void parse_args(struct manager *m, int argc, char **argv)
{
    const char *vmnode = NULL, *token_file = NULL, *module_dir = NULL;
    char err[512];
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': m->socket_path = optarg; break;
        case 't': m->tcp_addr = optarg; break;
        case 'k': token_file = optarg; break;
        case 'v': vmnode = optarg; break;
        case 'e': m->exit_with_stdin = 1; break;
        case 'f': m->max_frame = strtoull(optarg, NULL, 10); break;
        case 'g': m->grace = strtod(optarg, NULL); break;
        case 'c': m->no_cgroups = 1; break;
        case 'm': module_dir = optarg; break;
        case 'P': metrics_port = parse_port(optarg); break;
        case 'H': metrics_host = optarg; break;
        case 'p': m->spares = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'Z': m->no_zygote = 1; break;
        case 'h': usage_exit(0); break;
        case 'A': if (identity_add_admin(m, optarg, err, sizeof err) < 0) bad_arg(err); break;
        case 'M': m->socket_mode = parse_mode(optarg); break;
        case 'G': m->socket_group = optarg; break;
        case 'C': copts.urls = optarg; break;
        case 'N': copts.host = optarg; break;
        case 'X': copts.prefix = optarg; break;
        case 'R': copts.creds = optarg; break;
        case 'T': copts.token_file = optarg; break;
        case 'Y': copts.nkey_file = optarg; break;
        case 'Q': copts.ca_file = optarg; break;
        case 'E': copts.cert_file = optarg; break;
        case 'K': copts.key_file = optarg; break;
        default: usage();
        }
    }
    if (!m->socket_path || optind != argc || m->max_frame < 64 || m->grace < 0)
        usage();
    if (m->tcp_addr && !token_file)
        bad_arg("--tcp needs a non-empty --token-file");
    if (m->tcp_addr && identity_load_tokens(m, token_file, err, sizeof err) < 0)
        bad_arg(err);
    if (copts.urls && !copts.host && gethostname(host_buf, sizeof host_buf - 1) == 0)
        copts.host = host_buf;
    m->vmnode_path = find_vmnode(vmnode);
    if (module_dir && policy_set_module_dir(module_dir, err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: %s\n", err);
        exit(2);
    }
}

static int wire_events(struct manager *m)
{
    m->sig_term = evsignal_new(m->base, SIGTERM, signal_cb, m);
    m->sig_int = evsignal_new(m->base, SIGINT, signal_cb, m);
    m->sig_chld = evsignal_new(m->base, SIGCHLD, node_reap_cb, m);
    m->stop_tick = evtimer_new(m->base, stop_tick_cb, m);
    if (!m->sig_term || !m->sig_int || !m->sig_chld || !m->stop_tick ||
        event_add(m->sig_term, NULL) || event_add(m->sig_int, NULL) ||
        event_add(m->sig_chld, NULL))
        return -1;
    if (m->exit_with_stdin) {
        m->stdin_ev = event_new(m->base, 0, EV_READ | EV_PERSIST, stdin_cb, m);
        if (!m->stdin_ev || event_add(m->stdin_ev, NULL) < 0)
            fprintf(stderr, "bioxen-manager: cannot watch stdin; --exit-with-stdin ignored\n");
    }
    return 0;
}

/* One fd per node channel and per client: 10,000 idle VMs need more than
 * the usual soft limit of 1024, so take the hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The link, then what rides on it: heartbeats (hosts.c), names (names.c),
 * forwarding (remote.c, fwd.c), mail to other hosts (mailremote.c) and the
 * link's health as BROKER_ERROR events (broker.c). */
static int start_cluster(struct manager *m, char *err, size_t n)
{
    if (cluster_start(m->base, &copts, err, n) < 0)
        return -1;
    if (hosts_start() < 0 || names_start() < 0 || mailremote_start() < 0 || broker_start() < 0) {
        snprintf(err, n, "cannot set up the cluster's hosts, names and mail (out of memory)");
        return -1;
    }
    if (remote_start() < 0) {     /* forwarding (remote.h) */
        snprintf(err, n, "cannot subscribe the forwarding subjects (out of memory)");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct manager m;
    char err[512];
    mgr = &m;
    m.max_frame = BX_FRAME_MAX_DEFAULT;
    m.grace = 0.5;
    m.spares = 2;
    m.uid = geteuid();      /* an admin on the Unix socket (identity.c) */
    parse_args(&m, argc, argv);
    signal(SIGPIPE, SIG_IGN);   /* a vanished peer is an EPIPE, not our death */
    raise_fd_limit();
    m.start_time = proto_now();
    if (copts.urls)     /* locks in libevent: only for nats.c's threads */
        cluster_init_threads();
    m.base = event_base_new();
    if (!m.base || registry_init(&m) < 0 || wire_events(&m) < 0) {
        fprintf(stderr, "bioxen-manager: cannot set up the event loop\n");
        return 1;
    }
    if (copts.urls && start_cluster(&m, err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: %s\n", err);
        return 2;
    }
    if (!m.no_cgroups)
        cgroup_init();
    if (server_listen(&m, err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: %s\n", err);
        return 1;
    }
    if (metrics_port >= 0 && promhttp_start(m.base, metrics_host, metrics_port, err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: %s\n", err);
        return 1;
    }
    spare_init(m.spares);
    printf("READY %s\n", m.socket_path);
    fflush(stdout);
    event_base_dispatch(m.base);

    manager_shutdown("event loop ended");   /* no-op after a clean stop */
    cluster_stop();
    mailremote_stop();
    names_stop();
    promhttp_stop();
    client_free_all(&m);
    node_free_all(&m);
    cgroup_fini();
    mailbox_free_all();
    policy_free();
    event_free(m.sig_term);
    event_free(m.sig_int);
    event_free(m.sig_chld);
    event_free(m.stop_tick);
    if (m.stdin_ev)
        event_free(m.stdin_ev);
    free(m.buckets);
    identity_free(&m);
    flush_free();
    event_base_free(m.base);
    return 0;
}

/* Answers every pending request SHUTTING_DOWN, kills every node, then lets
 * the loop run until the nodes are reaped and replies flushed (or 3 s). */
void manager_shutdown(const char *why)
{
    (void)why;
    if (mgr->shutting_down)
        return;
    mgr->shutting_down = 1;
    mgr->stop_deadline = proto_now() + 3.0;
    event_del(mgr->stop_tick);      /* it may be the drain tick */
    event_assign(mgr->stop_tick, mgr->base, -1, 0, stop_tick_cb, mgr);
    server_close(mgr);
    client_stop_all(mgr);
    vm_destroy_all(BX_E_SHUTTING_DOWN, "manager is shutting down");
    remote_stop();      /* requests forwarded from here: answered the same */
    spare_stop();
    hosts_stop();       /* "leaving": the others free our names at once */
    cluster_quiesce();
    if (mgr->stdin_ev)
        event_del(mgr->stdin_ev);
    event_active(mgr->stop_tick, EV_TIMEOUT, 0);
}

static void stop_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct manager *m = arg;
    if ((m->nnodes == 0 && client_all_flushed(m) && cluster_quiet()) || proto_now() > m->stop_deadline) {
        event_base_loopbreak(m->base);
        return;
    }
    timer_arm(m->stop_tick, STOP_TICK);
}

static void signal_cb(evutil_socket_t sig, short ev, void *arg)
{
    (void)sig; (void)ev; (void)arg;
    manager_shutdown("signal");
}

/* Stops once the last half-closed client has had its replies, or at the
 * drain deadline (a mail_recv without a timeout could wait for ever). */
static void drain_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct manager *m = arg;
    if (client_count(m) == 0 || proto_now() > m->stop_deadline)
        return manager_shutdown("stdin closed");
    timer_arm(m->stop_tick, STOP_TICK);
}

/* The embedding process holds our stdin: its EOF means no more requests
 * will come. Like a client's half-close, what was already read is carried
 * out and answered before the manager stops. */
static void stdin_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)ev;
    struct manager *m = arg;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)) || m->draining)
        return;
    m->draining = 1;
    m->stop_deadline = proto_now() + DRAIN_MAX_S;
    event_del(m->stdin_ev);
    server_close(m);
    client_drain_all(m);
    event_assign(m->stop_tick, m->base, -1, 0, drain_tick_cb, m);
    event_active(m->stop_tick, EV_TIMEOUT, 0);
}
