/* fork_floor.c - the floor under a create from a zygote (bench/create.py
 * compiles and runs it): a parent with a Lua state and its libraries open
 * forks a child, which runs "return 1+1" in that state and writes the
 * answer on a pipe; the parent reads it and reaps the child. Prints one
 * line: the nanoseconds of each of N rounds. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    for (int i = 0; i < n; i++) {
        int p[2];
        if (pipe(p) < 0)
            return 1;
        long long t = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            luaL_dostring(L, "return 1+1");
            char c = (char)lua_tointeger(L, -1);
            _exit(write(p[1], &c, 1) == 1 ? 0 : 1);
        }
        char c = 0;
        if (pid < 0 || read(p[0], &c, 1) != 1 || c != 2)
            return 1;
        long long dt = now_ns() - t;
        waitpid(pid, NULL, 0);
        close(p[0]);
        close(p[1]);
        printf("%lld%c", dt, i + 1 < n ? ' ' : '\n');
    }
    lua_close(L);
    return 0;
}
