#include "bench/loadgen/mix.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace weir::loadgen {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool valid_path(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f && c != '#';
  });
}

}  // namespace

void mix::add(std::string path, double weight) {
  total_ += weight;
  entries_.push_back({std::move(path), weight});
  cumulative_.push_back(total_);
}

mix mix::parse(std::string_view text, std::string_view source) {
  mix m;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    auto fail = [&](const std::string& what) {
      throw mix_error(std::string(source) + ":" + std::to_string(line_no) + ": " + what);
    };
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    std::size_t sp = 0;
    while (sp < line.size() && !is_space(line[sp])) ++sp;
    const std::string_view weight_text = line.substr(0, sp);
    const std::string_view path = trim(line.substr(sp));
    double weight = 0;
    const auto [end, ec] =
        std::from_chars(weight_text.data(), weight_text.data() + weight_text.size(), weight);
    if (ec != std::errc() || end != weight_text.data() + weight_text.size() ||
        !std::isfinite(weight) || weight <= 0)
      fail("weight \"" + std::string(weight_text) + "\" is not a positive number");
    if (path.empty()) fail("missing path after the weight (want `WEIGHT PATH`)");
    if (!valid_path(path))
      fail("path \"" + std::string(path) +
           "\" must start with '/' and have no spaces or control characters");
    for (const mix_entry& e : m.entries_)
      if (e.path == path) fail("path " + std::string(path) + " appears twice");
    m.add(std::string(path), weight);
  }
  if (m.entries_.empty()) throw mix_error(std::string(source) + ": no `WEIGHT PATH` lines");
  return m;
}

mix mix::single(std::string path) {
  mix m;
  m.add(std::move(path), 1.0);
  return m;
}

std::size_t mix::pick(double u) const {
  const double x = u * total_;
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
  return std::min(static_cast<std::size_t>(it - cumulative_.begin()), entries_.size() - 1);
}

std::string format_request(std::string_view path, std::string_view host, bool close) {
  std::string r;
  r.reserve(path.size() + host.size() + 80);
  r.append("GET ").append(path).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append("\r\nUser-Agent: weir-loadgen\r\n");
  if (close) r.append("Connection: close\r\n");
  r.append("\r\n");
  return r;
}

}  // namespace weir::loadgen
