#pragma once
/// \file
/// Durable file operations for small files that hold key material.

#include <filesystem>
#include <span>

namespace outpost::platform {

/// Replaces `path` with `bytes` (mode 0600) so that after a crash it is either the
/// old or the new content, never torn: temp file, fsync, rename, fsync of the
/// folder. Throws Error{disk_full} or Error{io} (saying `what`), and then leaves the
/// old file as it was.
void writeFileAtomically(const std::filesystem::path& path, std::span<const unsigned char> bytes,
                         std::string_view what);

/// Overwrites `path` with random bytes, syncs, unlinks it and syncs the folder. A
/// missing file is not an error. On flash the overwrite is best effort (see
/// docs/security-model.md), which is why no key relies on erasure alone. Throws
/// Error{io} when the file exists but cannot be unlinked.
void destroyFile(const std::filesystem::path& path);

} // namespace outpost::platform
