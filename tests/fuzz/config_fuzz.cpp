// The operator's inputs: the config file reader and the admin API's controller settings
// (runtime/config.cpp) on arbitrary text. The first byte picks the reader: the config file, or
// one controller's settings (PUT or PATCH). Properties:
//  - the only failure is config_error, with a one-line message starting "config: " (never
//    another exception, a crash, or a message that spans lines);
//  - a config that is returned passes validate() again (nothing half-checked gets through).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "runtime/config.hpp"
#include "tests/fuzz/check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0] % 8;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const weir::config defaults;
  std::optional<weir::config> c;
  try {
    if (mode < 2) {
      c = weir::load_config_text(text, "fuzz.yaml", defaults);
    } else {
      const char* which = weir::controller_names[(mode - 2) / 2 % 3];
      c = weir::apply_controller_settings(defaults, which, text, mode % 2 == 0);
    }
  } catch (const weir::config_error& e) {
    const std::string what = e.what();
    if (what.rfind("config: ", 0) != 0 || what.find_first_of("\r\n") != std::string::npos) {
      std::fprintf(stderr, "message: ");
      for (char ch : what) {
        if (static_cast<unsigned char>(ch) < 0x20) {
          std::fprintf(stderr, "\\x%02x", static_cast<unsigned char>(ch));
        } else {
          std::fputc(ch, stderr);
        }
      }
      std::fputc('\n', stderr);
    }
    FUZZ_CHECK(what.rfind("config: ", 0) == 0);
    FUZZ_CHECK(what.find('\n') == std::string::npos && what.find('\r') == std::string::npos);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not a config_error: %s\n", e.what());
    FUZZ_CHECK(!"only config_error may escape");
  }
  try {
    weir::validate(*c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "a returned config fails validation: %s\n", e.what());
    FUZZ_CHECK(!"a returned config is valid");
  }
  return 0;
}
