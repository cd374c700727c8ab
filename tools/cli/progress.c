/*
 * progress.c — see progress.h. One line per file, redrawn in place with a
 * carriage return at most ten times a second, erased to the end of the line
 * so a shorter redraw leaves no debris, and ended with a newline at 100%.
 * Sizes are in MB of 10^6 bytes, as huggingface_hub's tqdm bars show them.
 */
#include "cli/progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_S 0.1
#define NAME_COLS 28

static struct {
    char file[256];
    double start;       /* when the first report of this file came        */
    int64_t start_done; /* bytes already there then (a resumed download)   */
    double last_draw;
    bool open;          /* a line is on screen without its newline         */
    bool finished;      /* this file reached 100% and its line is done     */
} g;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int term_cols(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col < 40 ? 40 : (ws.ws_col > 200 ? 200 : ws.ws_col);
    return 80;
}

static void draw(const char *file, int64_t done, int64_t total, double now, bool complete) {
    char name[NAME_COLS + 1];
    size_t n = strlen(file);
    if (n > NAME_COLS)
        snprintf(name, sizeof name, "...%s", file + n - (NAME_COLS - 3));
    else
        snprintf(name, sizeof name, "%s", file);

    double elapsed = now - g.start;
    char speed[32] = "";
    if (elapsed >= 0.05 && done > g.start_done)
        snprintf(speed, sizeof speed, "  %.1f MB/s", (double)(done - g.start_done) / 1e6 / elapsed);

    char tail[96];
    char line[512];
    if (total > 0) {
        double frac = (double)done / (double)total;
        if (frac > 1.0)
            frac = 1.0;
        snprintf(tail, sizeof tail, " %3d%%  %.1f/%.1f MB%s", (int)(frac * 100.0),
                 (double)done / 1e6, (double)total / 1e6, speed);
        int cols = term_cols();
        int bar = cols - 1 - NAME_COLS - 3 - (int)strlen(tail);
        if (bar > 40)
            bar = 40;
        if (bar < 10)
            bar = 10;
        char b[64];
        int fill = (int)(frac * bar + 0.5);
        for (int i = 0; i < bar; i++)
            b[i] = i < fill ? '#' : '.';
        b[bar] = '\0';
        snprintf(line, sizeof line, "%-*s [%s]%s", NAME_COLS, name, b, tail);
    } else {
        snprintf(line, sizeof line, "%-*s  %.1f MB%s", NAME_COLS, name, (double)done / 1e6, speed);
    }
    fprintf(stderr, "\r%s\x1b[K%s", line, complete ? "\n" : "");
    fflush(stderr);
    g.open = !complete;
    g.last_draw = now;
}

void ember_cli_progress(const char *file, int64_t done, int64_t total, void *user) {
    (void)user;
    if (!isatty(STDERR_FILENO))
        return;
    if (!file)
        file = "";
    double now = now_s();
    bool complete = total >= 0 && done >= total;
    if (strcmp(g.file, file) != 0 || (g.finished && !complete)) {
        if (g.open)
            fputc('\n', stderr);
        snprintf(g.file, sizeof g.file, "%s", file);
        g.start = now;
        g.start_done = done;
        g.open = false;
        g.finished = false;
        g.last_draw = 0;
    } else if (g.finished) {
        return; /* repeated 100% report */
    } else if (!complete && now - g.last_draw < REDRAW_S) {
        return;
    }
    draw(file, done, total, now, complete);
    g.finished = complete;
}
