/* api.c — public API glue (written next). */
#include "ember.h"
