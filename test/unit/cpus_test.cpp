#include "app/cpus.hpp"

#include <gtest/gtest.h>

namespace gophermq::app {
namespace {

TEST(Cpus, CgroupV2CpuMaxRoundsAQuotaUpToWholeCpus) {
  EXPECT_EQ(cpus_of_cpu_max("100000 100000\n"), 1U);
  EXPECT_EQ(cpus_of_cpu_max("150000 100000\n"), 2U);
  EXPECT_EQ(cpus_of_cpu_max("50000 100000"), 1U);
  EXPECT_EQ(cpus_of_cpu_max("400000 100000"), 4U);
}

TEST(Cpus, CgroupV2WithoutAQuotaOrUnreadableSetsNoLimit) {
  EXPECT_EQ(cpus_of_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_EQ(cpus_of_cpu_max(""), std::nullopt);
  EXPECT_EQ(cpus_of_cpu_max("100000"), std::nullopt);
  EXPECT_EQ(cpus_of_cpu_max("0 100000"), std::nullopt);
}

TEST(Cpus, CgroupV1CfsQuota) {
  EXPECT_EQ(cpus_of_cfs("200000\n", "100000\n"), 2U);
  EXPECT_EQ(cpus_of_cfs("25000", "100000"), 1U);
  EXPECT_EQ(cpus_of_cfs("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(cpus_of_cfs("", ""), std::nullopt);
}

TEST(Cpus, UsableCpusIsAtLeastOne) {
  EXPECT_GE(usable_cpus(), 1U);
}

}  // namespace
}  // namespace gophermq::app
