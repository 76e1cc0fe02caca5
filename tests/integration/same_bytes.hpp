#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>

namespace weir::test {

/// Byte-exact comparison that reports the first difference instead of printing megabytes.
inline ::testing::AssertionResult same_bytes(const std::string& actual,
                                             const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < actual.size() && i < expected.size() && actual[i] == expected[i]) ++i;
  return ::testing::AssertionFailure() << "body differs: got " << actual.size() << " bytes, want "
                                       << expected.size() << ", first difference at offset " << i;
}

}  // namespace weir::test
