/* test_frame.c - net/frame.c: reassembly across fragmented reads, frames at
 * and over the size limit, empty lines, and fd I/O through a socketpair. */
#include "frame.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_fragmented(void)
{
    bx_framebuf fb;
    fb_init(&fb, 64);
    const char *stream = "{\"id\":1}\n{\"id\":2}\n{\"id\":3";
    char *line;
    size_t len;
    int got = 0;
    /* one byte at a time: the worst fragmentation a socket can produce */
    for (const char *p = stream; *p; p++) {
        CHECK(fb_append(&fb, p, 1) == 0);
        while (fb_next(&fb, &line, &len) == 1) {
            got++;
            CHECK(len == 8 && line[len] == '\0');
            CHECK(line[6] == '0' + got);
        }
    }
    CHECK(got == 2);
    CHECK(fb_next(&fb, &line, &len) == 0);      /* third frame incomplete */
    CHECK(fb_append(&fb, "}\n", 2) == 0);
    CHECK(fb_next(&fb, &line, &len) == 1 && strcmp(line, "{\"id\":3}") == 0);
    CHECK(fb_next(&fb, &line, &len) == 0);
    fb_free(&fb);
}

static void test_many_in_one_read(void)
{
    bx_framebuf fb;
    fb_init(&fb, 1024);
    char buf[8192];
    size_t n = 0;
    for (int i = 0; i < 500; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%d\n", i);
    CHECK(fb_append(&fb, buf, n) == 0);
    char *line;
    size_t len;
    int i = 0, ok = 1;
    while (fb_next(&fb, &line, &len) == 1)
        ok &= atoi(line) == i++;
    CHECK(ok && i == 500);
    fb_free(&fb);
}

static void test_size_limit(void)
{
    bx_framebuf fb;
    fb_init(&fb, 16);
    char *line;
    size_t len;
    char exact[17];
    memset(exact, 'x', 16);
    exact[16] = '\n';
    CHECK(fb_append(&fb, exact, 17) == 0);      /* exactly max: accepted */
    CHECK(fb_next(&fb, &line, &len) == 1 && len == 16);
    CHECK(fb_append(&fb, exact, 16) == 0);      /* max bytes, no newline yet */
    CHECK(fb_next(&fb, &line, &len) == 0);
    CHECK(fb_append(&fb, "y", 1) == 0);         /* one more: over the limit */
    CHECK(fb_next(&fb, &line, &len) == -1);
    fb_free(&fb);

    fb_init(&fb, 16);                          /* oversized with its newline */
    CHECK(fb_append(&fb, "0123456789abcdefXYZ\n", 20) == 0);
    CHECK(fb_next(&fb, &line, &len) == -1);
    fb_free(&fb);
}

static void test_empty_lines(void)
{
    bx_framebuf fb;
    fb_init(&fb, 16);
    char *line;
    size_t len;
    CHECK(fb_append(&fb, "\n\nab\n", 5) == 0);
    CHECK(fb_next(&fb, &line, &len) == 1 && len == 0);
    CHECK(fb_next(&fb, &line, &len) == 1 && len == 0);
    CHECK(fb_next(&fb, &line, &len) == 1 && len == 2);
    fb_free(&fb);
}

static void test_fd_io(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    /* larger than one read and than the socket buffer's first chunk */
    size_t big = 300000;
    char *payload = malloc(big + 1);
    memset(payload, 'a', big);
    payload[big] = '\n';
    bx_framebuf fb;
    fb_init(&fb, 1 << 20);
    if (fork() == 0) {
        close(sv[0]);
        _exit(bx_write_all(sv[1], payload, big + 1) == 0 ? 0 : 1);
    }
    close(sv[1]);
    char *line;
    size_t len;
    int r;
    while ((r = fb_next(&fb, &line, &len)) == 0)
        if (fb_read_fd(&fb, sv[0]) <= 0)
            break;
    CHECK(r == 1 && len == big && line[0] == 'a' && line[big - 1] == 'a');
    CHECK(fb_read_fd(&fb, sv[0]) == 0);         /* writer closed: EOF */
    close(sv[0]);
    fb_free(&fb);
    free(payload);
}

int main(void)
{
    test_fragmented();
    test_many_in_one_read();
    test_size_limit();
    test_empty_lines();
    test_fd_io();
    return CHECK_DONE();
}
