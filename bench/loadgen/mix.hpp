#pragma once
// The request mix: weighted paths from a file of `WEIGHT PATH` lines (`#` starts a comment,
// blank lines are ignored), or one path. Each entry carries its request pre-formatted, so
// sending is a write of bytes that already exist.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace weir::loadgen {

/// A bad mix file: the message names the source and line ("FILE:3: ...").
class mix_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct mix_entry {
  std::string path;
  double weight = 0;
};

class mix {
 public:
  /// Parses `WEIGHT PATH` lines. WEIGHT is a positive number, PATH starts with '/' and has no
  /// whitespace or control characters; a path may appear once. Throws mix_error naming
  /// `source` and the line.
  static mix parse(std::string_view text, std::string_view source);
  static mix single(std::string path);

  const std::vector<mix_entry>& entries() const { return entries_; }
  /// The entry for a uniform draw u in [0, 1): each with probability weight / total.
  std::size_t pick(double u) const;
  /// The fraction of requests that go to entry i.
  double share(std::size_t i) const { return entries_[i].weight / total_; }

 private:
  std::vector<mix_entry> entries_;
  std::vector<double> cumulative_;  // running sums of the weights
  double total_ = 0;
  void add(std::string path, double weight);
};

/// "GET PATH HTTP/1.1" with Host and, when `close` is set, "Connection: close".
std::string format_request(std::string_view path, std::string_view host, bool close);

}  // namespace weir::loadgen
