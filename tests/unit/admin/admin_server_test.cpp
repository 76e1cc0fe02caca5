#include "admin/server.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "tests/integration/http_client.hpp"

namespace weir::admin {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

/// Records every call; answers what the test configured.
class fake_backend final : public backend {
 public:
  server_snapshot snapshot() const override {
    std::lock_guard lock(mu_);
    return snapshot_;
  }
  std::string policies_json() const override {
    std::lock_guard lock(mu_);
    json all = json::object();
    for (const auto& [name, text] : policies_) all[name] = json::parse(text);
    return all.dump();
  }
  std::optional<std::string> policy_json(std::string_view controller) const override {
    std::lock_guard lock(mu_);
    const auto it = policies_.find(std::string(controller));
    if (it == policies_.end()) return std::nullopt;
    return it->second;
  }
  result set_policy(std::string_view controller, std::string_view body, bool replace) override {
    std::lock_guard lock(mu_);
    calls_.push_back("set_policy " + std::string(controller) + (replace ? " replace " : " merge ") +
                     std::string(body));
    if (answer_.status == 200) policies_[std::string(controller)] = std::string(body);
    return answer_;
  }
  std::vector<controllers::decision_record> decisions() const override {
    std::lock_guard lock(mu_);
    return decisions_;
  }
  result resize(std::string_view group, std::size_t threads) override {
    return record("resize " + std::string(group) + " " + std::to_string(threads));
  }
  result fuse(std::string_view a, std::string_view b) override {
    return record("fuse " + std::string(a) + " " + std::string(b));
  }
  result split(std::string_view stage) override { return record("split " + std::string(stage)); }
  bool ready() const override {
    std::lock_guard lock(mu_);
    if (throw_on_ready_) throw std::runtime_error("ready exploded");
    return ready_;
  }

  // The test's side.
  void answer(result r) {
    std::lock_guard lock(mu_);
    answer_ = std::move(r);
  }
  void set_ready(bool r) {
    std::lock_guard lock(mu_);
    ready_ = r;
  }
  void set_throw_on_ready(bool t) {
    std::lock_guard lock(mu_);
    throw_on_ready_ = t;
  }
  void set_snapshot(server_snapshot s) {
    std::lock_guard lock(mu_);
    snapshot_ = std::move(s);
  }
  void set_decisions(std::vector<controllers::decision_record> d) {
    std::lock_guard lock(mu_);
    decisions_ = std::move(d);
  }
  /// The calls since the last take_calls().
  std::vector<std::string> take_calls() {
    std::lock_guard lock(mu_);
    return std::exchange(calls_, {});
  }

 private:
  result record(std::string call) {
    std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
    return answer_;
  }

  mutable std::mutex mu_;
  server_snapshot snapshot_;
  std::map<std::string, std::string> policies_ = {
      {"pool", R"({"enabled":true,"busy":0.85})"},
      {"grouping", R"({"enabled":false})"},
  };
  std::vector<controllers::decision_record> decisions_;
  std::vector<std::string> calls_;
  result answer_;
  bool ready_ = true;
  bool throw_on_ready_ = false;
};

/// One request on its own connection (the admin server does not keep connections alive).
test::response call(std::uint16_t port, std::string_view method, std::string_view target,
                    std::string_view body = "", std::string extra = "") {
  test::http_client client(port);
  if (!body.empty() || method == "PUT" || method == "PATCH" || method == "POST")
    extra +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return client.request(test::make_request(method, target, extra) + std::string(body),
                        method == "HEAD");
}

json body_of(const test::response& r) {
  return json::parse(r.body);
}

/// The error message of an error reply.
std::string error_of(const test::response& r) {
  const json j = body_of(r);
  return j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "";
}

class AdminServerTest : public ::testing::Test {
 protected:
  // One server per token setting for the suite: stopping one takes civetweb up to 2 s.
  static void SetUpTestSuite() {
    open_backend = std::make_unique<fake_backend>();
    open = std::make_unique<server>("127.0.0.1:0", *open_backend, "");
    guarded_backend = std::make_unique<fake_backend>();
    guarded = std::make_unique<server>("127.0.0.1:0", *guarded_backend, token);
  }
  static void TearDownTestSuite() {
    guarded.reset();
    open.reset();
    guarded_backend.reset();
    open_backend.reset();
  }
  void SetUp() override {
    open_backend->answer({});
    open_backend->take_calls();
    guarded_backend->answer({});
    guarded_backend->take_calls();
  }

  static std::uint16_t port() { return open->port(); }
  static fake_backend& fake() { return *open_backend; }

  static constexpr const char* token = "s3cret-token";
  static inline std::unique_ptr<fake_backend> open_backend, guarded_backend;
  static inline std::unique_ptr<server> open, guarded;
};

using strings = std::vector<std::string>;

TEST_F(AdminServerTest, ListensOnTheChosenEphemeralPort) {
  EXPECT_NE(open->port(), 0);
  EXPECT_NE(guarded->port(), 0);
  EXPECT_NE(open->port(), guarded->port());
}

TEST_F(AdminServerTest, HealthzIsOkAndJson) {
  const auto r = call(port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(body_of(r), json({{"status", "ok"}}));
}

TEST_F(AdminServerTest, HeadAnswersLikeGetWithoutABody) {
  const auto get = call(port(), "GET", "/healthz");
  const auto head = call(port(), "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Type"), "application/json");
  EXPECT_EQ(head.header("Content-Length"), get.header("Content-Length"));
  EXPECT_TRUE(head.body.empty());
}

TEST_F(AdminServerTest, ReadyzFollowsTheBackend) {
  fake().set_ready(true);
  auto r = call(port(), "GET", "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), json({{"ready", true}}));

  fake().set_ready(false);
  r = call(port(), "GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(body_of(r), json({{"ready", false}}));
  EXPECT_EQ(call(port(), "GET", "/healthz").status, 200);  // alive, if not ready

  fake().set_ready(true);
  EXPECT_EQ(call(port(), "GET", "/readyz").status, 200);
}

TEST_F(AdminServerTest, AnExceptionInTheBackendIsA500NotACrash) {
  fake().set_throw_on_ready(true);
  const auto r = call(port(), "GET", "/readyz");
  fake().set_throw_on_ready(false);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(error_of(r), "internal error: ready exploded");
  EXPECT_EQ(call(port(), "GET", "/readyz").status, 200);
}

TEST_F(AdminServerTest, PoliciesListsEveryController) {
  const auto r = call(port(), "GET", "/policies");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(body_of(r), json::parse(R"({"pool":{"enabled":true,"busy":0.85},
                                        "grouping":{"enabled":false}})"));
}

TEST_F(AdminServerTest, OnePolicyOr404) {
  auto r = call(port(), "GET", "/policies/grouping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), json({{"enabled", false}}));

  r = call(port(), "GET", "/policies/admission");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "policies: no controller named \"admission\"");
}

TEST_F(AdminServerTest, PutReplacesAndReturnsTheNewSettings) {
  const std::string body = R"({"enabled":false,"busy":0.9})";
  const auto r = call(port(), "PUT", "/policies/pool", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r), json::parse(body));
  EXPECT_EQ(fake().take_calls(), strings{"set_policy pool replace " + body});
  EXPECT_EQ(body_of(call(port(), "GET", "/policies/pool")), json::parse(body));
}

TEST_F(AdminServerTest, PatchMerges) {
  const std::string body = R"({"busy":0.8})";
  const auto r = call(port(), "PATCH", "/policies/grouping", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fake().take_calls(), strings{"set_policy grouping merge " + body});
}

TEST_F(AdminServerTest, ABackendRefusalIsPassedOnWithItsMessage) {
  fake().answer({400, "pool.busy: expected a number in 0..1, got 2"});
  auto r = call(port(), "PATCH", "/policies/pool", R"({"busy":2})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(error_of(r), "pool.busy: expected a number in 0..1, got 2");

  fake().answer({404, "no controller named \"nope\""});
  r = call(port(), "PUT", "/policies/nope", "{}");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no controller named \"nope\"");

  fake().answer({409, "line one\nline two"});
  r = call(port(), "PUT", "/policies/pool", "{}");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_of(r), "line one line two");  // one line
}

TEST_F(AdminServerTest, APolicyBodyThatIsNotAJsonObjectIs400BeforeTheBackend) {
  auto r = call(port(), "PUT", "/policies/pool", "enabled=false");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r).rfind("body: not JSON: parse error at line 1, column 1", 0), 0u)
      << error_of(r);
  r = call(port(), "PATCH", "/policies/pool", R"(["busy", 0.8])");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r), "body: expected a JSON object, got array");
  r = call(port(), "PUT", "/policies/pool", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r), "body: expected a JSON object, got an empty body");
  r = call(port(), "PUT", "/policies/pool", R"({"busy":)");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(fake().take_calls().empty());
}

TEST_F(AdminServerTest, ABodyOver64KiBIs413) {
  std::string big = R"({"pad":")" + std::string(64 * 1024, 'x') + R"("})";
  auto r = call(port(), "PUT", "/policies/pool", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(error_of(r), "body: larger than 64 KiB");

  {
    // Refused on the declared length alone: the client need not send the body at all.
    test::http_client client(port());
    r = client.request(test::make_request("PUT", "/policies/pool",
                                          "Content-Length: 100000000\r\nExpect: 100-continue\r\n"));
    EXPECT_EQ(r.status, 413);
  }  // closed: civetweb's worker stops waiting for the body it would discard
  {
    // Without a length (chunked), counted as it arrives.
    test::http_client client(port());
    std::string raw = test::make_request("PUT", "/policies/pool", "Transfer-Encoding: chunked\r\n");
    for (int i = 0; i < 3; ++i) raw += "6000\r\n" + std::string(0x6000, ' ') + "\r\n";
    r = client.request(raw + "0\r\n\r\n");
    EXPECT_EQ(r.status, 413);
  }
  EXPECT_TRUE(fake().take_calls().empty());

  // 64 KiB itself is accepted.
  const std::string pad(64 * 1024 - 2, ' ');
  r = call(port(), "PUT", "/policies/pool", "{" + pad + "}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fake().take_calls().size(), 1u);
}

TEST_F(AdminServerTest, AnExpectContinueClientThatSendsItsBodyIsServed) {
  // No 100 Continue comes (see read_body in admin/server.cpp): the client sends its body anyway.
  test::http_client client(port());
  const std::string body = R"({"stage":"send"})";
  const auto r =
      client.request(test::make_request("POST", "/split",
                                        "Content-Length: " + std::to_string(body.size()) +
                                            "\r\nExpect: 100-continue\r\n") +
                     body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fake().take_calls(), strings{"split send"});
}

TEST_F(AdminServerTest, DecisionsAllOrSinceAGivenTime) {
  fake().set_decisions({
      {.at_ms = 1000,
       .controller = "pool",
       .action = "grow",
       .group = "net",
       .from = 2,
       .to = 3,
       .why = "wait p90 2.1 ms > 1 ms",
       .applied = true},
      {.at_ms = 2000,
       .controller = "pool",
       .action = "shrink",
       .group = "disk",
       .from = 4,
       .to = 3,
       .why = "idle 0.2",
       .applied = false},
  });
  auto r = call(port(), "GET", "/decisions");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r), json::parse(R"({"decisions":[
      {"at_ms":1000,"controller":"pool","action":"grow","group":"net","from":2,"to":3,
       "why":"wait p90 2.1 ms > 1 ms","applied":true},
      {"at_ms":2000,"controller":"pool","action":"shrink","group":"disk","from":4,"to":3,
       "why":"idle 0.2","applied":false}]})"));

  r = call(port(), "GET", "/decisions?since_ms=2000");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(body_of(r)["decisions"].size(), 1u);
  EXPECT_EQ(body_of(r)["decisions"][0]["at_ms"], 2000);
  EXPECT_EQ(body_of(call(port(), "GET", "/decisions?x=1&since_ms=2001"))["decisions"].size(), 0u);

  r = call(port(), "GET", "/decisions?since_ms=soon");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r),
            "since_ms: expected a whole number of milliseconds (as in at_ms), got \"soon\"");
  fake().set_decisions({});
}

TEST_F(AdminServerTest, ResizeTakesAWholeNumberOfThreads) {
  auto r = call(port(), "POST", "/groups/net/resize", R"({"threads": 8})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body_of(r), json({{"ok", true}}));
  EXPECT_EQ(fake().take_calls(), strings{"resize net 8"});

  const std::string expected = "threads: expected a whole number 1..256";
  for (const char* bad : {R"({"threads": 0})", R"({"threads": 257})", R"({"threads": -1})",
                          R"({"threads": 2.5})", R"({"threads": "8"})", R"({"threads": true})"}) {
    r = call(port(), "POST", "/groups/net/resize", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(error_of(r).rfind(expected + ", got ", 0), 0u) << error_of(r);
  }
  EXPECT_EQ(error_of(call(port(), "POST", "/groups/net/resize", R"({"threads": "8"})")),
            expected + ", got \"8\"");
  r = call(port(), "POST", "/groups/net/resize", "{}");
  EXPECT_EQ(error_of(r), "threads: missing; expected a whole number 1..256");
  r = call(port(), "POST", "/groups/net/resize", R"({"threads": 4, "thread": 4})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r), "thread: unknown field (accepted: threads)");
  EXPECT_TRUE(fake().take_calls().empty());

  fake().answer({404, "no group named \"nope\""});
  r = call(port(), "POST", "/groups/nope/resize", R"({"threads": 2})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no group named \"nope\"");
  EXPECT_EQ(fake().take_calls(), strings{"resize nope 2"});
}

TEST_F(AdminServerTest, FuseTakesTwoStageNames) {
  auto r = call(port(), "POST", "/fuse", R"({"stages": ["read_parse", "cache_lookup"]})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fake().take_calls(), strings{"fuse read_parse cache_lookup"});

  for (const char* bad :
       {R"({"stages": ["a"]})", R"({"stages": ["a", "b", "c"]})", R"({"stages": "a,b"})",
        R"({"stages": ["a", 1]})", R"({"stages": ["a", ""]})", "{}"}) {
    r = call(port(), "POST", "/fuse", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(error_of(r).rfind("stages: expected two stage names", 0), 0u) << error_of(r);
  }
  EXPECT_TRUE(fake().take_calls().empty());

  fake().answer({409, "read_parse and send are not neighbours"});
  r = call(port(), "POST", "/fuse", R"({"stages": ["read_parse", "send"]})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_of(r), "read_parse and send are not neighbours");
}

TEST_F(AdminServerTest, SplitTakesOneStageName) {
  auto r = call(port(), "POST", "/split", R"({"stage": "send"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(fake().take_calls(), strings{"split send"});

  for (const char* bad : {R"({"stage": 3})", R"({"stage": ""})", R"({"stages": "send"})", "[]"}) {
    r = call(port(), "POST", "/split", bad);
    EXPECT_EQ(r.status, 400) << bad;
  }
  EXPECT_EQ(error_of(call(port(), "POST", "/split", R"({"stage": 3})")),
            "stage: expected a stage name, e.g. \"send\", got 3");
  EXPECT_TRUE(fake().take_calls().empty());

  fake().answer({409, "send runs alone already"});
  r = call(port(), "POST", "/split", R"({"stage": "send"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_of(r), "send runs alone already");
}

TEST_F(AdminServerTest, UnknownPathsAre404) {
  for (const char* target :
       {"/", "/metrics", "/healthz/", "/policies/", "/policies/pool/x", "/groups/net",
        "/groups//resize", "/groups/net/resize/x", "/topologyx"}) {
    const auto r = call(port(), "GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.header("Content-Type"), "application/json") << target;
    EXPECT_EQ(error_of(r).rfind("no such endpoint: ", 0), 0u) << target;
  }
  EXPECT_EQ(call(port(), "POST", "/groups/net/grow", "{}").status, 404);
  const auto r = call(port(), "REPORT", "/nowhere");  // not a CivetHandler method either
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
}

TEST_F(AdminServerTest, WrongMethodsAre405WithAllow) {
  struct expectation {
    const char* method;
    const char* target;
    const char* allow;
  };
  for (const auto& [method, target, allow] : {
           expectation{"DELETE", "/healthz", "GET, HEAD"},
           expectation{"POST", "/readyz", "GET, HEAD"},
           expectation{"PUT", "/topology", "GET, HEAD"},
           expectation{"POST", "/policies", "GET, HEAD"},
           expectation{"POST", "/policies/pool", "GET, HEAD, PUT, PATCH"},
           expectation{"DELETE", "/policies/pool", "GET, HEAD, PUT, PATCH"},
           expectation{"GET", "/fuse", "POST"},
           expectation{"PUT", "/split", "POST"},
           expectation{"GET", "/groups/net/resize", "POST"},
           expectation{"OPTIONS", "/decisions", "GET, HEAD"},
           expectation{"PROPFIND", "/policies", "GET, HEAD"},  // not a CivetHandler method
           expectation{"MKCOL", "/fuse", "POST"},
       }) {
    const auto r = call(port(), method, target);
    EXPECT_EQ(r.status, 405) << method << " " << target;
    EXPECT_EQ(r.header("Allow"), allow) << method << " " << target;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_FALSE(error_of(r).empty());
  }
  EXPECT_TRUE(fake().take_calls().empty());
}

TEST_F(AdminServerTest, WithATokenChangesNeedIt) {
  const auto p = guarded->port();
  const std::string body = R"({"stage":"send"})";

  auto r = call(p, "POST", "/split", body);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("WWW-Authenticate"), R"(Bearer realm="weir admin")");
  EXPECT_EQ(error_of(r), "authorization: expected \"Authorization: Bearer <token>\"");

  r = call(p, "POST", "/split", body, "Authorization: Bearer s3cret-tokeN\r\n");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("WWW-Authenticate"), R"(Bearer realm="weir admin", error="invalid_token")");
  EXPECT_EQ(error_of(r), "authorization: wrong token");
  for (const char* wrong : {"Bearer s3cret", "Bearer s3cret-token-and-more", "Basic czNjcmV0",
                            "s3cret-token", "Bearer "}) {
    r = call(p, "PUT", "/policies/pool", "{}", std::string("Authorization: ") + wrong + "\r\n");
    EXPECT_EQ(r.status, 401) << wrong;
  }
  EXPECT_TRUE(guarded_backend->take_calls().empty());

  r = call(p, "POST", "/split", body, "Authorization: Bearer s3cret-token\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
  r = call(p, "PATCH", "/policies/pool", "{}", "Authorization: bearer s3cret-token\r\n");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(guarded_backend->take_calls(), (strings{"split send", "set_policy pool merge {}"}));

  // Reads stay open: the console's read-only mode, and the probes.
  for (const char* target :
       {"/healthz", "/readyz", "/topology", "/policies", "/policies/pool", "/decisions"}) {
    EXPECT_EQ(call(p, "GET", target).status, 200) << target;
  }
}

TEST_F(AdminServerTest, WithoutATokenChangesNeedNone) {
  EXPECT_EQ(call(port(), "POST", "/split", R"({"stage":"send"})").status, 200);
  EXPECT_EQ(
      call(port(), "POST", "/split", R"({"stage":"send"})", "Authorization: Bearer x\r\n").status,
      200);
}

TEST_F(AdminServerTest, EveryChangeIsLoggedWithWhoWhatAndResult) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("", sink));
  fake().answer({409, "send runs alone already"});
  call(port(), "POST", "/split", R"({"stage": "send"})");
  call(guarded->port(), "POST", "/fuse", R"({"stages":["a","b"]})");
  call(port(), "GET", "/policies");
  spdlog::set_default_logger(previous);

  const auto lines = sink->last_formatted();
  ASSERT_EQ(lines.size(), 2u);  // the GET is not logged
  EXPECT_NE(lines[0].find("[info] admin: 127.0.0.1:"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"( POST /split {"stage": "send"} -> 409: send runs alone already)"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find(" POST /fuse -> 401: authorization: "), std::string::npos) << lines[1];
  EXPECT_EQ(lines[1].find(token), std::string::npos);
}

TEST(AdminServerListen, ABusyPortIsAnErrorNamingTheAddress) {
  fake_backend b;
  server first("127.0.0.1:0", b, "");
  const std::string listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    server second(listen, b, "");
    FAIL() << "bound " << listen << " twice";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("admin.listen: cannot listen on " + listen + ": ", 0), 0u) << what;
    EXPECT_NE(what.find("in use"), std::string::npos) << what;
  }
}

TEST(AdminServerListen, AMalformedAddressIsAnError) {
  fake_backend b;
  for (const char* bad : {"9465", "localhost", "127.0.0.1:", "127.0.0.1:65536", "1.2.3.4:80,5",
                          "127.0.0.1:80s", ":9465", "::1:9465"}) {
    try {
      server s(bad, b, "");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(
          std::string(e.what()),
          std::string("admin.listen: expected HOST:PORT or [IPV6]:PORT, PORT in 0..65535, got \"") +
              bad + "\"");
    }
  }
}

runtime::histogram_snapshot samples_in_bucket(std::size_t bucket, std::uint64_t n) {
  runtime::histogram_snapshot h;
  h.counts[bucket] = n;
  h.sum_ns = n * runtime::latency_bounds_ns[bucket];
  return h;
}

server_snapshot topology_snapshot(std::uint64_t processed, std::uint64_t waits,
                                  std::uint64_t responses, std::uint64_t hits,
                                  std::uint64_t misses) {
  server_snapshot s;
  s.stages = {
      {.name = "read_parse",
       .group = "net",
       .processed = processed,
       .rejected = {1, 2, 3},
       .queue_wait = samples_in_bucket(2, waits),
       .service = samples_in_bucket(0, waits)},
      {.name = "send", .group = "net", .processed = 7},
      {.name = "disk_io", .group = "disk", .processed = 0},
  };
  s.groups = {
      {.name = "net",
       .queue_depth = 4,
       .queue_capacity = 1024,
       .threads = 2,
       .busy_threads = 1,
       .wakeups = 99},
      {.name = "disk",
       .queue_depth = 0,
       .queue_capacity = 256,
       .threads = 8,
       .busy_threads = 0,
       .wakeups = 5},
  };
  s.responses[0][0] = responses;
  s.connections_open = 3;
  s.connections_max = 1000;
  s.cache = {.hits = hits, .misses = misses, .bytes = 4096, .capacity_bytes = 65536};
  return s;
}

// The window is the server's own state, so this test has a server of its own.
TEST(AdminServerTopology, RatesAndPercentilesAreOverTheRecentWindow) {
  fake_backend b;
  b.set_snapshot(topology_snapshot(100, 10, 50, 10, 10));
  server s("127.0.0.1:0", b, "");

  auto r = call(s.port(), "GET", "/topology");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  json t = body_of(r);
  EXPECT_EQ(t["window_s"], 0);  // the first: no window yet
  EXPECT_EQ(t["groups"], json::parse(R"([
      {"name":"net","stages":["read_parse","send"],"threads":2,"busy_threads":1,
       "queue_depth":4,"queue_capacity":1024,"wakeups":99},
      {"name":"disk","stages":["disk_io"],"threads":8,"busy_threads":0,
       "queue_depth":0,"queue_capacity":256,"wakeups":5}])"));
  EXPECT_EQ(t["stages"][0], json::parse(R"({"name":"read_parse","group":"net","processed":100,
      "rate_per_s":0.0,"rejected":{"queue_full":1,"admission":2,"timeout":3},
      "queue_wait_p50_ms":null,"queue_wait_p99_ms":null,
      "service_p50_ms":null,"service_p99_ms":null})"));
  EXPECT_EQ(t["connections"], json({{"open", 3}, {"max", 1000}}));
  EXPECT_EQ(t["cache"], json::parse(R"({"hits":10,"misses":10,"hit_ratio":null,"bytes":4096,
                                         "capacity_bytes":65536})"));
  EXPECT_EQ(t["requests_per_s"], 0.0);

  // 600 more processed, 100 more waits (25..50 us), 300 more responses, 30 hits and 10 misses.
  b.set_snapshot(topology_snapshot(700, 110, 350, 40, 20));
  ASSERT_TRUE(test::eventually(
      10s,
      [&] {
        t = body_of(call(s.port(), "GET", "/topology"));
        return t["window_s"].get<double>() >= 1.0;
      },
      50ms));
  const double window = t["window_s"].get<double>();
  EXPECT_LT(window, 5.0);
  const json& st = t["stages"][0];
  EXPECT_EQ(st["processed"], 700);
  EXPECT_NEAR(st["rate_per_s"].get<double>(), 600 / window, 0.5);
  EXPECT_NEAR(t["requests_per_s"].get<double>(), 300 / window, 0.5);
  EXPECT_EQ(t["stages"][1]["rate_per_s"], 0.0);
  EXPECT_GT(st["queue_wait_p50_ms"].get<double>(), 0.025);
  EXPECT_LE(st["queue_wait_p50_ms"].get<double>(), 0.050);
  EXPECT_LE(st["queue_wait_p99_ms"].get<double>(), 0.050);
  EXPECT_LE(st["service_p99_ms"].get<double>(), 0.010);
  EXPECT_TRUE(t["stages"][1]["service_p50_ms"].is_null());  // no samples in the window
  EXPECT_EQ(t["cache"]["hit_ratio"], 0.75);
  EXPECT_EQ(t["cache"]["hits"], 40);
}

}  // namespace
}  // namespace weir::admin
