#pragma once

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace weir::test {

/// A temporary directory holding a document root (`root()`) and a sibling directory outside it
/// (`outside()`), removed with everything in it on destruction.
class test_docroot {
 public:
  test_docroot() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/weir-it-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    base_ = pattern;
    root_ = base_ / "root";
    outside_ = base_ / "outside";
    std::filesystem::create_directory(root_);
    std::filesystem::create_directory(outside_);
  }
  ~test_docroot() {
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }
  test_docroot(const test_docroot&) = delete;
  test_docroot& operator=(const test_docroot&) = delete;

  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& outside() const { return outside_; }

  /// Writes `content` to `rel` under the root, creating parent directories.
  void write(const std::string& rel, std::string_view content) const {
    write_at(root_ / rel, content);
  }
  /// Replaces `rel` atomically (write a sibling, rename over), as deploy tools do.
  void replace(const std::string& rel, std::string_view content) const {
    const auto tmp = root_ / (rel + ".tmp-replace");
    write_at(tmp, content);
    std::filesystem::rename(tmp, root_ / rel);
  }
  void write_outside(const std::string& rel, std::string_view content) const {
    write_at(outside_ / rel, content);
  }
  void make_dir(const std::string& rel) const { std::filesystem::create_directories(root_ / rel); }
  /// A symbolic link at `rel` (under the root) whose target is `target`, verbatim.
  void symlink(const std::string& target, const std::string& rel) const {
    std::filesystem::create_symlink(target, root_ / rel);
  }
  /// Sets the modification (and access) time of `rel` to `t`.
  void set_mtime(const std::string& rel, std::time_t t) const {
    const timeval times[2] = {{t, 0}, {t, 0}};
    if (::utimes((root_ / rel).c_str(), times) != 0) throw std::runtime_error("utimes failed");
  }

  /// `n` deterministic bytes that do not repeat with a short period, so an offset error shows.
  static std::string pattern(std::size_t n, std::uint32_t seed = 1) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (std::size_t i = 0; i < n; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      s[i] = static_cast<char>(x & 0xff);
    }
    return s;
  }

 private:
  static void write_at(const std::filesystem::path& p, std::string_view content) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + p.string());
  }

  std::filesystem::path base_, root_, outside_;
};

}  // namespace weir::test
