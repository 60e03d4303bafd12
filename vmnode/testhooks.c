/* testhooks.c - linked only into bioxen-vmnode-testhooks, a test build of
 * the node. It gives Lua a `__bx_test` table of raw system calls that no
 * real VM can make, so the isolation tests can show each layer stopping
 * them: seccomp kills the process, the network namespace has no route, the
 * uid drop shows in getuid. With BX_TEST_NO_SECCOMP=1 in its environment it
 * skips seccomp, to prove the namespaces on their own. */
#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int result(lua_State *L, long rc)
{
    if (rc < 0)
        lua_pushstring(L, strerror(errno));
    else
        lua_pushinteger(L, rc);
    return 1;
}

/* connect(host, port): "connected", or the errno text */
static int t_connect(lua_State *L)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_port = htons((uint16_t)luaL_checkinteger(L, 2));
    inet_pton(AF_INET, luaL_checkstring(L, 1), &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return result(L, -1);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    errno = e;
    if (rc == 0)
        lua_pushstring(L, "connected");
    return rc == 0 ? 1 : result(L, -1);
}

static int t_open(lua_State *L)
{
    long fd = open(luaL_checkstring(L, 1), O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close((int)fd);
    return result(L, fd);
}

static int t_execve(lua_State *L)
{
    char *argv[] = {(char *)"sh", NULL};
    return result(L, execve(luaL_checkstring(L, 1), argv, NULL));
}

static int t_fork(lua_State *L)
{
    long pid = syscall(SYS_fork);
    if (pid == 0)
        _exit(0);
    return result(L, pid);
}

static int t_ptrace(lua_State *L)
{
    return result(L, ptrace(PTRACE_TRACEME, 0, NULL, NULL));
}

static int t_mmap_exec(lua_State *L)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return result(L, p == MAP_FAILED ? -1 : 0);
}

/* getpid through the x32 ABI (syscall number | 0x40000000) */
static int t_x32(lua_State *L)
{
    return result(L, syscall(0x40000000 | SYS_getpid));
}

void *volatile testhooks_kept;  /* escapes, so the compiler keeps the writes */

/* malloc and touch n bytes outside the Lua heap (the allocator cannot see
 * them; only the cgroup or RLIMIT_AS can); kept, never freed */
static int t_alloc(lua_State *L)
{
    size_t n = (size_t)luaL_checkinteger(L, 1);
    char *p = malloc(n);
    if (!p)
        return result(L, -1);
    memset(p, 1, n);
    testhooks_kept = p;
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

static int t_ids(lua_State *L)
{
    lua_pushinteger(L, getuid());
    lua_pushinteger(L, getgid());
    lua_pushinteger(L, getpid());
    return 3;
}

static int t_asan(lua_State *L)
{
#ifdef BX_ASAN
    lua_pushboolean(L, 1);
#else
    lua_pushboolean(L, 0);
#endif
    return 1;
}

void testhooks_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"connect", t_connect}, {"open", t_open}, {"execve", t_execve}, {"fork", t_fork},
        {"ptrace", t_ptrace}, {"mmap_exec", t_mmap_exec}, {"x32", t_x32}, {"ids", t_ids},
        {"alloc", t_alloc},
        {"asan", t_asan}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setglobal(L, "__bx_test");
}

int testhooks_skip_seccomp(void)
{
    const char *v = getenv("BX_TEST_NO_SECCOMP");
    return v && strcmp(v, "1") == 0;
}
