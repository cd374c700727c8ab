/* backend.c — pairs a driver with an architecture (written next). */
#include "ember.h"
