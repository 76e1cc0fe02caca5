#include "metrics/endpoint.hpp"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <iterator>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/collector.hpp"
#include "metrics/process.hpp"

namespace weir::metrics {
namespace {

class scrape final : public prometheus::Collectable {
 public:
  scrape(std::function<server_snapshot()> snapshot, std::string version)
      : snapshot_(std::move(snapshot)), version_(std::move(version)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    // An exception must not unwind through civetweb's C frames: without a snapshot (it only
    // allocates, so only memory exhaustion can fail it) serve the process series alone, and
    // the scrape's missing weir_ series show that something is wrong.
    std::vector<prometheus::MetricFamily> out;
    try {
      out = collect(snapshot_(), version_);
    } catch (const std::exception&) {
      out.clear();
    }
    auto process = process_families();
    out.insert(out.end(), std::make_move_iterator(process.begin()),
               std::make_move_iterator(process.end()));
    return out;
  }

 private:
  std::function<server_snapshot()> snapshot_;
  std::string version_;
};

/// civetweb takes more than one address: a bare port (every interface), lists ("a,b"), suffixes
/// ("443s"), and it truncates a port over 65535. Only a single HOST:PORT is let through.
void check_listen(std::string_view listen) {
  const auto colon = listen.rfind(':');
  const std::string_view host = listen.substr(0, colon == std::string_view::npos ? 0 : colon);
  const std::string_view port = listen.substr(colon == std::string_view::npos ? 0 : colon + 1);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  const bool good_host = !host.empty() && host.find(',') == std::string_view::npos &&
                         (bracketed || host.find_first_of("[]:") == std::string_view::npos);
  const bool good_port =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
      std::stoul(std::string(port)) <= 65535;
  if (colon == std::string_view::npos || !good_host || !good_port) {
    const std::string got(listen);
    throw std::runtime_error(
        "metrics.listen: expected HOST:PORT or [IPV6]:PORT, PORT in 0..65535, got \"" + got + "\"");
  }
}

// civetweb says why it could not start only through its log callback, called on the thread
// that constructs the server; the endpoint's constructor points this at a string meanwhile.
thread_local std::string* start_error = nullptr;

int on_civetweb_log(const mg_connection*, const char* message) {
  // The first message is the cause; "Failed to setup server ports" follows it.
  if (start_error != nullptr && start_error->empty()) *start_error = message;
  return 1;  // handled: civetweb prints nothing (it would only write to its error_log_file)
}

}  // namespace

endpoint::endpoint(const std::string& listen, std::function<server_snapshot()> snapshot,
                   std::string version)
    : collectable_(std::make_shared<scrape>(std::move(snapshot), std::move(version))) {
  check_listen(listen);
  if (listen.front() == '[' && mg_check_feature(MG_FEATURES_IPV6) == 0) {  // true of Debian's 1.15
    throw std::runtime_error("metrics.listen: cannot listen on " + listen +
                             ": civetweb was built without IPv6");
  }
  CivetCallbacks callbacks;
  callbacks.log_message = on_civetweb_log;
  std::string error;
  start_error = &error;
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", listen, "num_threads", "2"}, &callbacks);
  } catch (const std::exception& e) {
    start_error = nullptr;
    throw std::runtime_error("metrics.listen: cannot listen on " + listen + ": " +
                             (error.empty() ? std::string(e.what()) : error));
  }
  start_error = nullptr;
  exposer_->RegisterCollectable(collectable_);
}

endpoint::~endpoint() = default;

std::uint16_t endpoint::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

}  // namespace weir::metrics
