#include "status.h"

#include <cstdarg>
#include <cstdio>

namespace calib {

calib_status fail(char* err, calib_status code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(err, CALIB_ERRLEN, fmt, ap);
  va_end(ap);
  return code;
}

}  // namespace calib
