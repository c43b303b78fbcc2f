// Writes the seed corpus (tests/fuzz/corpus/<target>/<name>) from fuzz::seeds().
// Usage: fuzz_write_seeds <corpus dir>
#include "fuzz_entries.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_write_seeds <corpus dir>\n";
    return 2;
  }
  for (const char* target : {"frames", "handshake", "messages"}) {
    const auto dir = std::filesystem::path(argv[1]) / target;
    std::filesystem::create_directories(dir);
    for (const auto& [name, bytes] : outpost::protocol::fuzz::seeds(target)) {
      std::ofstream out(dir / name, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
    }
  }
  return 0;
}
