// Path resolution (stages/file_resolver.cpp) after normalisation, on a small document root built
// at start-up with the traps a real one has: symlinks that stay inside and ones that leave, a
// loop, a FIFO, a device, a directory without index. Properties:
//  - the status is one the resolver documents;
//  - a 200 hands back an open regular file whose real path is beneath the root: nothing outside
//    is ever served, whatever the bytes of the request path;
//  - the descriptor is the caller's (closed here; a leak would show as EMFILE -> 503 and fail).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "stages/file_resolver.hpp"
#include "stages/http/path.hpp"
#include "tests/fuzz/check.hpp"

namespace {

std::string root;  // real path, no trailing '/'
std::unique_ptr<weir::file_resolver> confined;

void remove_root() {
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
}

void write(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/weir-fuzz-root-XXXXXX";
  FUZZ_CHECK(mkdtemp(tmpl) != nullptr);
  root = std::filesystem::canonical(tmpl).string();
  std::atexit(remove_root);
  namespace fs = std::filesystem;
  write(root + "/index.html", "<p>root</p>");
  write(root + "/a.txt", "a");
  fs::create_directory(root + "/dir");
  write(root + "/dir/index.html", "<p>dir</p>");
  write(root + "/dir/b.txt", "b");
  fs::create_directory(root + "/empty");
  fs::create_directory_symlink("dir", root + "/link_in");
  fs::create_symlink("../a.txt", root + "/dir/up");
  fs::create_symlink("/etc/passwd", root + "/link_out");
  fs::create_directory_symlink("/etc", root + "/dir/etc");
  fs::create_symlink(root + "/a.txt", root + "/absolute_in");
  fs::create_symlink("loop", root + "/loop");
  fs::create_symlink("/dev/zero", root + "/zero");
  FUZZ_CHECK(mkfifo((root + "/fifo").c_str(), 0600) == 0);
  confined = std::make_unique<weir::file_resolver>(root, false);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  std::string path;
  if (weir::http::normalize_path(raw, path) != 0) return 0;
  const weir::file_resolver::result r = confined->resolve(path);
  FUZZ_CHECK(r.status == 200 || r.status == 301 || r.status == 403 || r.status == 404 ||
             r.status == 500 || r.status == 503);
  FUZZ_CHECK(r.status != 503);  // would mean a descriptor leaked
  if (r.status != 200) {
    FUZZ_CHECK(r.fd == -1);
    return 0;
  }
  FUZZ_CHECK(r.fd >= 0);
  struct stat st {};
  FUZZ_CHECK(fstat(r.fd, &st) == 0 && S_ISREG(st.st_mode));
  char real[PATH_MAX];
  const std::string proc = "/proc/self/fd/" + std::to_string(r.fd);
  const ssize_t n = readlink(proc.c_str(), real, sizeof real - 1);
  FUZZ_CHECK(n > 0);
  const std::string_view served(real, static_cast<std::size_t>(n));
  if (served.rfind(root + "/", 0) != 0) {
    std::fprintf(stderr, "served %.*s for %s, outside %s\n", static_cast<int>(served.size()),
                 served.data(), path.c_str(), root.c_str());
    FUZZ_CHECK(!"served from outside the root");
  }
  close(r.fd);
  return 0;
}
