// spdlog builds its registry (the default logger) on first use, behind a function-local static.
// libspdlog is not built with ThreadSanitizer, so TSan does not see that static's guard: when two
// of a test's threads log first at the same time (a control thread and the test's own), it reports
// the registry's construction as a race. weir's main() sets the logger up before any thread starts;
// the test binaries do it here, before main.

#include <spdlog/spdlog.h>

namespace {

[[maybe_unused]] const spdlog::logger* const default_logger = spdlog::default_logger_raw();

}  // namespace
