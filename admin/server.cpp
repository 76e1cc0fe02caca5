#include "admin/server.hpp"

#include <CivetServer.h>
#include <civetweb.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "admin/routes.hpp"

namespace weir::admin {
namespace {

/// civetweb takes more than one address: a bare port (every interface), lists ("a,b"), suffixes
/// ("443s"), and it truncates a port over 65535. Only a single HOST:PORT is let through.
void check_listen(std::string_view listen) {
  const auto colon = listen.rfind(':');
  const bool has_colon = colon != std::string_view::npos;
  const std::string_view host = listen.substr(0, has_colon ? colon : 0);
  const std::string_view port = has_colon ? listen.substr(colon + 1) : std::string_view{};
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  const bool good_host = !host.empty() && host.find(',') == std::string_view::npos &&
                         (bracketed || host.find_first_of("[]:") == std::string_view::npos);
  const bool digits =
      !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
      });
  if (!has_colon || !good_host || !digits || std::stoul(std::string(port)) > 65535) {
    throw std::runtime_error(
        "admin.listen: expected HOST:PORT or [IPV6]:PORT, PORT in 0..65535, got \"" +
        std::string(listen) + "\"");
  }
}

// civetweb tells why it could not start only through its log callback, on the thread that
// constructs the server: the constructor points this at a string meanwhile. Later messages
// (a client that went away) go to the debug log.
thread_local std::string* start_error = nullptr;

int on_civetweb_log(const mg_connection*, const char* message) {
  // The first message is the cause; "Failed to setup server ports" follows it.
  if (start_error != nullptr) {
    if (start_error->empty()) *start_error = message;
  } else {
    spdlog::debug("admin: civetweb: {}", message);
  }
  return 1;  // handled: civetweb prints nothing itself
}

/// Compares in time that depends on the lengths only, not on where the first difference is.
bool same_secret(std::string_view given, std::string_view secret) {
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (std::size_t i = 0; i < secret.size(); ++i)
    diff |= static_cast<unsigned char>(secret[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

/// The 401 for a change without the token, or nullopt when the request carries it.
std::optional<reply> unauthorised(const mg_connection* conn, const std::string& token) {
  const char* header = mg_get_header(conn, "Authorization");
  std::string_view value = header != nullptr ? header : "";
  constexpr std::string_view scheme = "Bearer ";
  if (value.size() > scheme.size() &&
      strncasecmp(value.data(), scheme.data(), scheme.size()) == 0) {
    value.remove_prefix(scheme.size());
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (same_secret(value, token)) return std::nullopt;
    reply r = error_reply(401, "authorization: wrong token");
    r.headers.emplace_back("WWW-Authenticate",
                           R"(Bearer realm="weir admin", error="invalid_token")");
    return r;
  }
  reply r = error_reply(401, "authorization: expected \"Authorization: Bearer <token>\"");
  r.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="weir admin")");
  return r;
}

/// Reads the request body into `out`; false when it is larger than max_body_bytes. civetweb
/// discards what is left unread once the handler returns, so the 413 reaches the client. No
/// "100 Continue" is sent (civetweb's response state would then refuse the final head): a client
/// that sent "Expect: 100-continue" sends its body after its own wait (curl: 1 s), or gets the 413
/// at once when the declared length is too large.
bool read_body(mg_connection* conn, const mg_request_info& ri, std::string& out) {
  if (ri.content_length > static_cast<long long>(max_body_bytes)) return false;
  char buf[8192];
  for (;;) {
    const int n = mg_read(conn, buf, sizeof buf);
    if (n <= 0) return true;  // the end, or the client went away: parse what came
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_body_bytes) return false;
  }
}

void send_reply(mg_connection* conn, const reply& r, bool head) {
  const std::string body = r.body + "\n";
  const std::string length = std::to_string(body.size());
  mg_response_header_start(conn, r.status);
  mg_response_header_add(conn, "Content-Type", "application/json", -1);
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  for (const auto& [name, value] : r.headers)
    mg_response_header_add(conn, name.c_str(), value.c_str(), -1);
  mg_response_header_send(conn);
  if (!head) mg_write(conn, body.data(), body.size());
}

/// The body as the log shows it: one line, at most 200 bytes.
std::string loggable(std::string_view body) {
  std::string s(body.substr(0, 200));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (body.size() > 200) s += "...";
  return s;
}

/// Every method civetweb hands to a CivetHandler comes to serve(), and the others it parses
/// (WebDAV's) through on_begin_request: the router answers 404 and 405 itself, so civetweb's own
/// file handling (there is no document root) and its text/plain errors are never reached.
class request_handler final : public CivetHandler {
 public:
  request_handler(backend& b, std::string token) : routes_(b), token_(std::move(token)) {}

  using CivetHandler::handleDelete;
  using CivetHandler::handleGet;
  using CivetHandler::handleHead;
  using CivetHandler::handleOptions;
  using CivetHandler::handlePatch;
  using CivetHandler::handlePost;
  using CivetHandler::handlePut;
  bool handleGet(CivetServer*, mg_connection* c, int* status) override { return serve(c, status); }
  bool handleHead(CivetServer*, mg_connection* c, int* status) override { return serve(c, status); }
  bool handlePost(CivetServer*, mg_connection* c, int* status) override { return serve(c, status); }
  bool handlePut(CivetServer*, mg_connection* c, int* status) override { return serve(c, status); }
  bool handlePatch(CivetServer*, mg_connection* c, int* status) override {
    return serve(c, status);
  }
  bool handleDelete(CivetServer*, mg_connection* c, int* status) override {
    return serve(c, status);
  }
  bool handleOptions(CivetServer*, mg_connection* c, int* status) override {
    return serve(c, status);
  }

  /// Answers the request on `conn`; `status` gets the reply's, for civetweb's access log.
  bool serve(mg_connection* conn, int* status) {
    const mg_request_info& ri = *mg_get_request_info(conn);
    const std::string_view method = ri.request_method;
    reply r;
    // An exception must not unwind through civetweb's C frames.
    try {
      r = answer(conn, ri, method);
    } catch (const std::exception& e) {
      r = error_reply(500, std::string("internal error: ") + e.what());
    } catch (...) {
      r = error_reply(500, "internal error");
    }
    send_reply(conn, r, method == "HEAD");
    *status = r.status;
    return true;
  }

 private:
  reply answer(mg_connection* conn, const mg_request_info& ri, std::string_view method) {
    const std::string path = ri.local_uri != nullptr ? ri.local_uri : "";
    const auto route = match(path);
    if (!route) return error_reply(404, "no such endpoint: " + loggable(path));
    if (!allows(route->what, method)) {
      reply r =
          error_reply(405, std::string(method) + " is not allowed on " + path +
                               " (allowed: " + std::string(allowed_methods(route->what)) + ")");
      r.headers.emplace_back("Allow", allowed_methods(route->what));
      return r;
    }
    if (method == "GET" || method == "HEAD")
      return routes_.read(*route, ri.query_string != nullptr ? ri.query_string : "");

    std::string body;
    reply r;
    if (auto refused = token_.empty() ? std::nullopt : unauthorised(conn, token_)) {
      r = std::move(*refused);
    } else if (!read_body(conn, ri, body)) {
      r = error_reply(413, "body: larger than " + std::to_string(max_body_bytes / 1024) + " KiB");
    } else {
      r = routes_.change(*route, method, body);
    }
    spdlog::info("admin: {}:{} {} {}{}{} -> {}{}{}", ri.remote_addr, ri.remote_port, method, path,
                 body.empty() ? "" : " ", loggable(body), r.status, r.error.empty() ? "" : ": ",
                 r.error);
    return r;
  }

  routes routes_;
  const std::string token_;
};

/// Methods civetweb parses but does not hand to a CivetHandler go to the router too.
int on_begin_request(mg_connection* conn) {
  const std::string_view method = mg_get_request_info(conn)->request_method;
  for (std::string_view dispatched : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == dispatched) return 0;  // civetweb calls request_handler::handle<Method>
  }
  const auto* civet = static_cast<const CivetServer*>(mg_get_user_data(mg_get_context(conn)));
  auto* handler = static_cast<request_handler*>(const_cast<void*>(civet->getUserContext()));
  int status = 0;
  handler->serve(conn, &status);
  return status;
}

}  // namespace

struct server::impl {
  impl(backend& b, std::string token) : handler(b, std::move(token)) {}
  request_handler handler;
  std::unique_ptr<CivetServer> civet;  // declared last: stops serving first
};

server::server(const std::string& listen, backend& b, std::string token)
    : impl_(std::make_unique<impl>(b, std::move(token))) {
  check_listen(listen);
  if (listen.front() == '[' && mg_check_feature(MG_FEATURES_IPV6) == 0) {  // true of Debian's 1.15
    throw std::runtime_error("admin.listen: cannot listen on " + listen +
                             ": civetweb was built without IPv6");
  }
  CivetCallbacks callbacks;
  callbacks.log_message = on_civetweb_log;
  callbacks.begin_request = on_begin_request;
  const std::vector<std::string> options = {
      "listening_ports",   listen, "num_threads",        "2",
      "enable_keep_alive", "no",   "request_timeout_ms", "10000",
  };
  std::string error;
  start_error = &error;
  try {
    impl_->civet = std::make_unique<CivetServer>(options, &callbacks, &impl_->handler);
  } catch (const std::exception& e) {
    start_error = nullptr;
    throw std::runtime_error("admin.listen: cannot listen on " + listen + ": " +
                             (error.empty() ? std::string(e.what()) : error));
  }
  start_error = nullptr;
  impl_->civet->addHandler("/", impl_->handler);
}

server::~server() = default;

std::uint16_t server::port() const {
  const auto ports = impl_->civet->getListeningPorts();
  return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

}  // namespace weir::admin
