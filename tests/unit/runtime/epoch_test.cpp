// Grace periods: a thread inside a section entered before an advance holds the epoch back until
// it leaves; one that enters afterwards does not.

#include "runtime/epoch.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/unit/runtime/sync_support.hpp"

namespace weir::runtime {
namespace {

using testing_support::eventually;
using testing_support::gate;
using testing_support::gate_opener;

// A thread that enters a section, says so, and stays in it until `leave` opens.
struct section_holder {
  gate leave;
  std::atomic<bool> inside{false};
  std::thread thread{[this] {
    epoch::enter();
    inside.store(true);
    leave.wait();
    epoch::leave();
  }};
  ~section_holder() {
    leave.open();
    thread.join();
  }
};

TEST(Epoch, PassesAtOnceWhenNoThreadIsInASection) {
  EXPECT_TRUE(epoch::passed(epoch::advance()));
}

TEST(Epoch, AThreadInsideSinceBeforeTheAdvanceHoldsItBackUntilItLeaves) {
  section_holder holder;
  ASSERT_TRUE(eventually([&] { return holder.inside.load(); }));
  const std::uint64_t e = epoch::advance();
  EXPECT_FALSE(epoch::passed(e));
  EXPECT_FALSE(epoch::passed(e));
  holder.leave.open();
  EXPECT_TRUE(eventually([&] { return epoch::passed(e); }));
}

TEST(Epoch, AThreadThatEntersAfterTheAdvanceDoesNotHoldItBack) {
  const std::uint64_t e = epoch::advance();
  section_holder holder;
  ASSERT_TRUE(eventually([&] { return holder.inside.load(); }));
  EXPECT_TRUE(epoch::passed(e));
  // ...but it does hold back the next one.
  EXPECT_FALSE(epoch::passed(epoch::advance()));
}

TEST(Epoch, AThreadThatExitsLeavesNoSlotBehind) {
  std::uint64_t e = 0;
  {
    std::thread t([] { epoch::enter(); });  // exits inside a section: its slot goes with it
    t.join();
    e = epoch::advance();
  }
  EXPECT_TRUE(epoch::passed(e));
}

}  // namespace
}  // namespace weir::runtime
