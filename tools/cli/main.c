/* main.c — the ember command (written next). */
#include <stdio.h>
int main(void) { puts("ember"); return 0; }
