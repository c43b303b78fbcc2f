// The C ABI bridge: noexcept one-liners over the C++ API.

#include "outpost.h"

#include "outpost/error.hpp"

#include <cstring>
#include <string>

namespace {

// Error names and advice are string literals: their data() is NUL-terminated.
const char* cstr(std::string_view literal) noexcept { return literal.data(); }

} // namespace

extern "C" {

const char* outpost_version(void) { return OUTPOST_VERSION_STRING; }

const char* outpost_error_name(int32_t code) {
  return cstr(outpost::errcName(static_cast<outpost::Errc>(code)));
}

const char* outpost_error_advice(int32_t code) {
  return cstr(outpost::errcAdvice(static_cast<outpost::Errc>(code)));
}

} // extern "C"
