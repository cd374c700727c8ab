/*
 * test_hub_progress.c — the CLI progress bar: drawn into a pseudo-terminal
 * (percent, MB, MB/s, one line ended at 100%), silent when stderr is not a
 * terminal.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "hub_testutil.h"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs `fn` with stderr redirected to `fd`, then restores stderr. */
static void with_stderr(int fd, void (*fn)(void)) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
}

static void report_download(void) {
    ember_cli_progress("model.safetensors", 0, 2000000, NULL);
    sleep_ms(150);
    ember_cli_progress("model.safetensors", 1000000, 2000000, NULL);
    ember_cli_progress("model.safetensors", 1100000, 2000000, NULL); /* throttled */
    sleep_ms(150);
    ember_cli_progress("model.safetensors", 2000000, 2000000, NULL);
    ember_cli_progress("model.safetensors", 2000000, 2000000, NULL); /* repeated: ignored */
    ember_cli_progress("a/very/long/path/to/some/file/called/tokenizer.json", 10, -1, NULL);
    ember_cli_progress("a/very/long/path/to/some/file/called/tokenizer.json", 20, 20, NULL);
}

static void test_terminal(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    REQUIRE(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0, "no pty available");
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    REQUIRE(slave >= 0, "cannot open the pty slave");
    with_stderr(slave, report_download);
    close(slave);
    char out[8192];
    size_t n = 0;
    fcntl(master, F_SETFL, O_NONBLOCK);
    for (ssize_t r; n < sizeof out - 1 && (r = read(master, out + n, sizeof out - 1 - n)) > 0;)
        n += (size_t)r;
    out[n] = '\0';
    close(master);
    CHECK(strstr(out, "\r") != NULL, "no carriage return: '%s'", out);
    CHECK(strstr(out, " 50%") != NULL, "no 50%%: '%s'", out);
    CHECK(strstr(out, "100%") != NULL, "no 100%%: '%s'", out);
    CHECK(strstr(out, "1.0/2.0 MB") != NULL, "no MB counts: '%s'", out);
    CHECK(strstr(out, "MB/s") != NULL, "no speed: '%s'", out);
    CHECK(strstr(out, " 55%") == NULL, "redraw not throttled: '%s'", out);
    int hundreds = 0;
    for (const char *p = out; (p = strstr(p, "100%")) != NULL; p += 4)
        hundreds++;
    CHECK(hundreds == 2, "100%% drawn %d times", hundreds);
    CHECK(strstr(out, "...") != NULL, "long name not shortened: '%s'", out);
    const char *first_done = strstr(out, "100%");
    CHECK(first_done && strchr(first_done, '\n') != NULL, "line not finished at 100%%");
    CHECK(n > 0 && out[n - 1] == '\n', "output does not end with a newline");
}

static int g_file_fd = -1;
static void report_small(void) {
    ember_cli_progress("config.json", 0, 100, NULL);
    ember_cli_progress("config.json", 100, 100, NULL);
}

static void test_not_a_terminal(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", tu_dir);
    g_file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(g_file_fd >= 0, "cannot create %s", path);
    with_stderr(g_file_fd, report_small);
    close(g_file_fd);
    size_t len = 1;
    char *data = tu_read(path, &len);
    CHECK(data && len == 0, "wrote %zu bytes to a file", len);
    free(data);
}

int main(void) {
    RUN(test_terminal);
    RUN(test_not_a_terminal);
    return tu_finish();
}
