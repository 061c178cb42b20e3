// Error reporting shared by every C entry point: a status code plus a formatted message.
#pragma once
#include "calib.h"

namespace calib {

// Writes the message into err (CALIB_ERRLEN bytes) and returns code.
calib_status fail(char* err, calib_status code, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace calib
