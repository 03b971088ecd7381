// The default HTTP thread count follows the CPUs the broker may run on, not the machine's.
#include <gtest/gtest.h>
#include <sched.h>

#include <string>
#include <vector>

#include "support/broker_process.hpp"

namespace gophermq::test {
namespace {

// Runs `body` with this thread pinned to the first CPU it may use, so a child started meanwhile
// inherits that mask, and restores the mask afterwards.
template <typename Body>
void pinned_to_one_cpu(Body body) {
  cpu_set_t original;
  ASSERT_EQ(sched_getaffinity(0, sizeof(original), &original), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &original)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  body();
  ASSERT_EQ(sched_setaffinity(0, sizeof(original), &original), 0);
}

// isolated_arguments() without its fixed thread count.
std::vector<std::string> arguments_without_threads(std::vector<std::string> extra = {}) {
  std::vector<std::string> arguments = isolated_arguments();
  std::erase_if(arguments,
                [](const std::string& argument) { return argument.starts_with("--threads="); });
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

TEST(Threads, ABrokerPinnedToOneCpuStartsOneHttpThread) {
  pinned_to_one_cpu([] {
    BrokerProcess broker(arguments_without_threads());
    EXPECT_NE(broker.log().find("msg=ready http_threads=1\n"), std::string::npos) << broker.log();
  });
}

TEST(Threads, AnExplicitThreadCountWinsOverTheCpus) {
  pinned_to_one_cpu([] {
    BrokerProcess broker(arguments_without_threads({"--threads=3"}));
    EXPECT_NE(broker.log().find("msg=ready http_threads=3\n"), std::string::npos) << broker.log();
  });
}

}  // namespace
}  // namespace gophermq::test
