#include "fault_vfs.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

namespace outpost::test {

namespace {

struct FaultFile {
  sqlite3_file base;
  FaultVfs* owner;
  std::string* path;
  sqlite3_file* real;
};

constexpr std::size_t kRealOffset = (sizeof(FaultFile) + 15) & ~std::size_t{15};

FaultFile& ff(sqlite3_file* f) { return *reinterpret_cast<FaultFile*>(f); }

std::vector<unsigned char> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int fClose(sqlite3_file* f) {
  auto& x = ff(f);
  const int rc = x.real->pMethods->xClose(x.real);
  delete x.path;
  x.path = nullptr;
  return rc;
}

int fRead(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
  auto& x = ff(f);
  if (x.owner->crashed()) {
    return SQLITE_IOERR_READ;
  }
  return x.real->pMethods->xRead(x.real, buf, amt, off);
}

int fWrite(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
  auto& x = ff(f);
  if (x.owner->crashed()) {
    return SQLITE_IOERR_WRITE;
  }
  const int fault = x.owner->writeFault();
  if (fault != SQLITE_OK) {
    return fault;
  }
  const bool crashNow = x.owner->countOperation(true);
  auto& t = x.owner->track(*x.path);
  const auto* bytes = static_cast<const unsigned char*>(buf);
  std::size_t n = static_cast<std::size_t>(amt);
  if (crashNow) {
    n /= 2; // the write is torn by the crash
  }
  t.pending.push_back({false, off, std::vector<unsigned char>(bytes, bytes + n)});
  const int rc =
      n > 0 ? x.real->pMethods->xWrite(x.real, buf, static_cast<int>(n), off) : SQLITE_OK;
  if (crashNow) {
    x.owner->markCrashed();
    return SQLITE_IOERR_WRITE;
  }
  return rc;
}

int fTruncate(sqlite3_file* f, sqlite3_int64 size) {
  auto& x = ff(f);
  if (x.owner->crashed()) {
    return SQLITE_IOERR_TRUNCATE;
  }
  x.owner->track(*x.path).pending.push_back({true, size, {}});
  return x.real->pMethods->xTruncate(x.real, size);
}

int fSync(sqlite3_file* f, int) {
  auto& x = ff(f);
  if (x.owner->crashed()) {
    return SQLITE_IOERR_FSYNC;
  }
  if (x.owner->countOperation(false)) {
    x.owner->markCrashed(); // the sync never completed
    return SQLITE_IOERR_FSYNC;
  }
  auto& t = x.owner->track(*x.path);
  t.durable = readWhole(*x.path);
  t.pending.clear();
  return SQLITE_OK; // no real fsync: the model decides what survives
}

int fFileSize(sqlite3_file* f, sqlite3_int64* size) {
  auto& x = ff(f);
  return x.real->pMethods->xFileSize(x.real, size);
}
int fLock(sqlite3_file* f, int level) {
  auto& x = ff(f);
  return x.real->pMethods->xLock(x.real, level);
}
int fUnlock(sqlite3_file* f, int level) {
  auto& x = ff(f);
  return x.real->pMethods->xUnlock(x.real, level);
}
int fCheckReserved(sqlite3_file* f, int* out) {
  auto& x = ff(f);
  return x.real->pMethods->xCheckReservedLock(x.real, out);
}
int fFileControl(sqlite3_file* f, int op, void* arg) {
  auto& x = ff(f);
  return x.real->pMethods->xFileControl(x.real, op, arg);
}
int fSectorSize(sqlite3_file* f) {
  auto& x = ff(f);
  return x.real->pMethods->xSectorSize(x.real);
}
int fDeviceCharacteristics(sqlite3_file* f) {
  auto& x = ff(f);
  return x.real->pMethods->xDeviceCharacteristics(x.real);
}

const sqlite3_io_methods kMethods = {1,
                                     fClose,
                                     fRead,
                                     fWrite,
                                     fTruncate,
                                     fSync,
                                     fFileSize,
                                     fLock,
                                     fUnlock,
                                     fCheckReserved,
                                     fFileControl,
                                     fSectorSize,
                                     fDeviceCharacteristics,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr};

FaultVfs& owner(sqlite3_vfs* v) { return *static_cast<FaultVfs*>(v->pAppData); }

int vOpen(sqlite3_vfs* v, sqlite3_filename name, sqlite3_file* file, int flags, int* outFlags) {
  FaultVfs& o = owner(v);
  auto& x = ff(file);
  x.base.pMethods = nullptr;
  x.owner = &o;
  x.real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  const int rc = o.base()->xOpen(o.base(), name, x.real, flags, outFlags);
  if (rc != SQLITE_OK) {
    return rc;
  }
  x.path = new std::string(name != nullptr ? name : "");
  if (name != nullptr && !o.isTracked(*x.path)) {
    auto& t = o.track(*x.path);
    {
      // What exists at open time (synced by whoever wrote it) counts as durable.
      t.durable = readWhole(*x.path);
      if (t.durable->empty() && !std::filesystem::exists(*x.path)) {
        t.durable.reset();
      }
    }
  }
  x.base.pMethods = &kMethods;
  return SQLITE_OK;
}

int vDelete(sqlite3_vfs* v, const char* name, int syncDir) {
  FaultVfs& o = owner(v);
  if (o.crashed()) {
    return SQLITE_IOERR_DELETE;
  }
  o.track(name).durable.reset();
  o.track(name).pending.clear();
  return o.base()->xDelete(o.base(), name, syncDir);
}
int vAccess(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return owner(v).base()->xAccess(owner(v).base(), name, flags, out);
}
int vFullPathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return owner(v).base()->xFullPathname(owner(v).base(), name, n, out);
}
int vRandomness(sqlite3_vfs* v, int n, char* out) {
  return owner(v).base()->xRandomness(owner(v).base(), n, out);
}
int vSleep(sqlite3_vfs* v, int us) { return owner(v).base()->xSleep(owner(v).base(), us); }
int vCurrentTime(sqlite3_vfs* v, double* out) {
  return owner(v).base()->xCurrentTime(owner(v).base(), out);
}

} // namespace

FaultVfs::FaultVfs() : base_(sqlite3_vfs_find(nullptr)) {
  vfs_.iVersion = 1;
  vfs_.szOsFile = static_cast<int>(kRealOffset) + base_->szOsFile;
  vfs_.mxPathname = base_->mxPathname;
  vfs_.zName = kName;
  vfs_.pAppData = this;
  vfs_.xOpen = vOpen;
  vfs_.xDelete = vDelete;
  vfs_.xAccess = vAccess;
  vfs_.xFullPathname = vFullPathname;
  vfs_.xRandomness = vRandomness;
  vfs_.xSleep = vSleep;
  vfs_.xCurrentTime = vCurrentTime;
  if (sqlite3_vfs_register(&vfs_, 0) != SQLITE_OK) {
    throw std::runtime_error("cannot register the fault VFS");
  }
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&vfs_); }

void FaultVfs::disarm() {
  operations_ = writes_ = crashAt_ = ioErrorAt_ = diskFullFrom_ = 0;
  crashed_ = false;
}
void FaultVfs::crashAtOperation(std::uint64_t n) {
  operations_ = writes_ = 0;
  crashAt_ = n;
}
void FaultVfs::ioErrorAtWrite(std::uint64_t n) {
  operations_ = writes_ = 0;
  ioErrorAt_ = n;
}
void FaultVfs::diskFullFromWrite(std::uint64_t n) {
  operations_ = writes_ = 0;
  diskFullFrom_ = n;
}

FaultVfs::Tracked& FaultVfs::track(const std::string& path) { return files_[path]; }

bool FaultVfs::countOperation(bool isWrite) {
  (void)isWrite;
  ++operations_;
  return crashAt_ != 0 && operations_ == crashAt_;
}

int FaultVfs::writeFault() {
  const std::uint64_t n = writes_ + 1;
  if (ioErrorAt_ != 0 && n == ioErrorAt_) {
    ++writes_;
    return SQLITE_IOERR_WRITE;
  }
  if (diskFullFrom_ != 0 && n >= diskFullFrom_) {
    ++writes_;
    return SQLITE_FULL;
  }
  ++writes_;
  return SQLITE_OK;
}

void FaultVfs::materialise(CrashPolicy policy, std::uint32_t seed) {
  std::mt19937 rng(seed);
  for (auto& [path, t] : files_) {
    if (path.empty()) {
      continue;
    }
    std::optional<std::vector<unsigned char>> content = t.durable;
    for (std::size_t k = 0; k < t.pending.size(); ++k) {
      const Pending& p = t.pending[k];
      enum { apply, tear, drop } what = apply;
      switch (policy) {
      case CrashPolicy::dropUnsynced:
        what = drop;
        break;
      case CrashPolicy::keepAll:
        what = apply;
        break;
      case CrashPolicy::tearLast:
        what = k + 1 == t.pending.size() ? tear : apply;
        break;
      case CrashPolicy::randomSubset: {
        const auto r = rng() % 3;
        what = r == 0 ? apply : r == 1 ? tear : drop;
        break;
      }
      }
      if (what == drop) {
        continue;
      }
      if (!content) {
        content.emplace();
      }
      if (p.truncate) {
        content->resize(static_cast<std::size_t>(p.offset));
        continue;
      }
      std::size_t n = p.bytes.size();
      if (what == tear) {
        n = n / 2;
      }
      const auto off = static_cast<std::size_t>(p.offset);
      if (content->size() < off + n) {
        content->resize(off + n);
      }
      std::copy_n(p.bytes.begin(), n, content->begin() + static_cast<std::ptrdiff_t>(off));
    }
    std::error_code ec;
    if (!content) {
      std::filesystem::remove(path, ec);
      continue;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(content->data()),
              static_cast<std::streamsize>(content->size()));
  }
  files_.clear();
  disarm();
}

} // namespace outpost::test
