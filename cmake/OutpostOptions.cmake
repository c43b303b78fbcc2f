# Warnings and build options as INTERFACE targets: components link them
# privately, so nothing leaks to the apps that embed the SDK.

add_library(outpost_warnings INTERFACE)
add_library(outpost::warnings ALIAS outpost_warnings)
target_compile_options(outpost_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(OUTPOST_WERROR)
  target_compile_options(outpost_warnings INTERFACE -Werror)
endif()

add_library(outpost_options INTERFACE)
add_library(outpost::options ALIAS outpost_options)
target_compile_features(outpost_options INTERFACE cxx_std_20)
if(OUTPOST_SANITIZE)
  target_compile_options(outpost_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(outpost_options INTERFACE -fsanitize=address,undefined)
endif()
