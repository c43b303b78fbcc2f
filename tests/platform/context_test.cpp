#include <outpost/context.hpp>

#include <doctest/doctest.h>
#include <sodium.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

TEST_SUITE("platform.context") {
  TEST_CASE("a context initialises libsodium") {
    const outpost::Context context;
    // sodium_init() returns 1 when the library was already initialised.
    CHECK(sodium_init() == 1);
    unsigned char buf[16] = {};
    randombytes_buf(buf, sizeof buf);
  }

  TEST_CASE("components log through the logger the context was given") {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    auto logger = std::make_shared<spdlog::logger>("test", sink);
    const outpost::Context context(logger);
    context.log().warn("hello {}", 42);
    logger->flush();
    CHECK(out.str().find("hello 42") != std::string::npos);
  }
}
