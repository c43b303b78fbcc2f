# Checks that every C++ block of docs/embedding-guide.md is code of
# tests/records/embedding_guide_test.cpp (whitespace aside), so the guide shows code
# that is built and run. Usage: cmake -DGUIDE=... -DSOURCE=... [-DMIN_BLOCKS=N] -P
# check_guide.cmake (also used for docs/getting-started.md and examples/embedding/minimal.cpp).
cmake_policy(SET CMP0007 NEW)
file(READ "${GUIDE}" guide)
file(READ "${SOURCE}" source)
# Semicolons would split CMake lists: stand them in.
string(REPLACE ";" "<semicolon>" guide "${guide}")
string(REPLACE ";" "<semicolon>" source "${source}")
# The guide leaves out the test's own assertions.
string(REGEX REPLACE "\n[ ]*(REQUIRE|CHECK)\\([^\n]*" "" source "${source}")
string(REGEX REPLACE "[ \t\r\n]" "" source_flat "${source}")
string(REGEX MATCHALL "```cpp\n[^`]*```" blocks "${guide}")
list(LENGTH blocks count)
if(NOT DEFINED MIN_BLOCKS)
  set(MIN_BLOCKS 5)
endif()
if(count LESS MIN_BLOCKS)
  message(FATAL_ERROR "expected the guide's code blocks, found ${count}")
endif()
foreach(block IN LISTS blocks)
  string(REGEX REPLACE "^```cpp\n" "" code "${block}")
  string(REGEX REPLACE "```$" "" code "${code}")
  string(REGEX REPLACE "[ \t\r\n]" "" flat "${code}")
  string(FIND "${source_flat}" "${flat}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "a code block of the guide is not in ${SOURCE}:\n${code}")
  endif()
endforeach()
message(STATUS "${count} guide blocks match the built example")
