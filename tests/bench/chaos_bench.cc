// SPDX-License-Identifier: Apache-2.0
// make bench-cluster: the seeded chaos run of tests/gossip/service_cluster.h
// for many seeds and longer than the test suite does (7 simulated nodes
// running the real decision path; phases of partition, 30% loss, crashes
// and restarts). Prints
//   sim chaos: K/N shared tokens revoked, max ms after heal X
// where K counts tokens refused on every live node within 1 s of the heal.
#include <cstdio>
#include <cstdlib>

#include "../gossip/service_cluster.h"

using namespace uritoken::cluster::simtest;

int main(int argc, char** argv) {
  const std::uint64_t seeds = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 40;
  const int phases = argc > 2 ? std::atoi(argv[2]) : 20;
  std::size_t shared = 0, in_time = 0, controls = 0, unconverged = 0;
  std::uint64_t max_ms = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    const ChaosResult r = run_chaos(seed, phases, 3000);
    shared += r.shared;
    in_time += r.revoked_in_time;
    controls += r.controls_revoked;
    unconverged += !r.converged;
    if (r.max_ms_after_heal > max_ms) max_ms = r.max_ms_after_heal;
    if (!r.failures.empty())
      std::printf("  seed %llu: %s\n", static_cast<unsigned long long>(seed), r.failures.c_str());
  }
  std::printf("  %llu seeds x %d phases of 3 s: %zu control tokens revoked, %zu runs not converged\n",
              static_cast<unsigned long long>(seeds), phases, controls, unconverged);
  std::printf("sim chaos: %zu/%zu shared tokens revoked, max ms after heal %llu\n", in_time, shared,
              static_cast<unsigned long long>(max_ms));
  return in_time == shared && controls == 0 && unconverged == 0 ? 0 : 1;
}
