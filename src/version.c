/* libscaleneprof: version.h */
#include "internal.h"

const char *scalene_version(void) { return SCALENE_VERSION_STRING; }

unsigned int scalene_version_hex(void) { return SCALENE_VERSION_HEX; }
