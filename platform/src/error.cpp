#include "outpost/error.hpp"

namespace outpost {

std::string_view errcName(Errc code) noexcept {
  switch (code) {
#define OUTPOST_ERRC_NAME(name, number, advice)                                                    \
  case Errc::name:                                                                                 \
    return #name;
    OUTPOST_ERROR_CODES(OUTPOST_ERRC_NAME)
#undef OUTPOST_ERRC_NAME
  }
  return "unknown";
}

std::string_view errcAdvice(Errc code) noexcept {
  switch (code) {
#define OUTPOST_ERRC_ADVICE(name, number, advice)                                                  \
  case Errc::name:                                                                                 \
    return advice;
    OUTPOST_ERROR_CODES(OUTPOST_ERRC_ADVICE)
#undef OUTPOST_ERRC_ADVICE
  }
  return "report this error with the log";
}

Error::Error(Errc code, const std::string& message)
    : std::runtime_error(std::string(errcName(code)) + ": " + message), code_(code),
      message_(message) {}

} // namespace outpost
