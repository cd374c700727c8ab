/*
 * progress.h — the download progress bar of the ember command.
 *
 * ember_cli_progress() has the signature of ember_progress_fn so it can be
 * passed as ember_model_params.progress. It draws one line on stderr, and
 * only when stderr is a terminal, so that redirected output and logs stay
 * clean: file name, bar, percent, MB done of total, MB/s. The line is
 * finished with a newline when a file reaches 100%.
 */
#ifndef EMBER_CLI_PROGRESS_H
#define EMBER_CLI_PROGRESS_H

#include <stdint.h>

/* `total` < 0 when unknown. `user` is unused (may be NULL). Not thread-safe:
 * one download at a time, as the library reports from the loading thread. */
void ember_cli_progress(const char *file, int64_t done, int64_t total, void *user);

#endif
