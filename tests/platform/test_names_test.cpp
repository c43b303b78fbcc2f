// Every test case is run by ctest: doctest_discover_tests() registers each test case
// by name, and CMake splits a name at ';' into pieces that each match nothing (the
// piece "runs" zero test cases and passes). Names must therefore never hold a ';'.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

TEST_CASE("no test case name holds a semicolon (ctest would silently run none of it)") {
  const fs::path root = OUTPOST_SOURCE_DIR;
  // TEST_CASE( followed by one or more string literals (a name split over lines).
  const std::regex testCase(R"re(TEST_CASE\(((\s*"([^"\\]|\\.)*")+)\s*\))re");
  const std::regex literal(R"re("(([^"\\]|\\.)*)")re");
  std::vector<std::string> bad;
  std::size_t names = 0;
  for (const char* dir : {"tests", "examples"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
      if (!entry.is_regular_file() || entry.path().extension() != ".cpp" ||
          entry.path().filename() == "test_names_test.cpp") {
        continue;
      }
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string source = text.str();
      for (std::sregex_iterator it(source.begin(), source.end(), testCase), end; it != end; ++it) {
        std::string name;
        const std::string literals = (*it)[1].str();
        for (std::sregex_iterator l(literals.begin(), literals.end(), literal), lend; l != lend;
             ++l) {
          name += (*l)[1].str();
        }
        ++names;
        if (name.find(';') != std::string::npos) {
          bad.push_back(entry.path().lexically_relative(root).string() + ": " + name);
        }
      }
    }
  }
  CHECK(names > 300); // the scan found the suite
  for (const auto& b : bad) {
    FAIL_CHECK("a test case name holds ';': " << b);
  }
}
