/* serve_stub.c — placeholder until `ember serve` lands. */
#include <stdio.h>

#include "cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "ember serve: not available in this build yet\n");
    return 2;
}
