// SPDX-License-Identifier: Apache-2.0
// Memory for the sidecar's large lookup tables (tens of MiB, read at
// random): one anonymous mapping, asked to be backed by 2 MiB pages.
//
// With 4 KiB pages nearly every lookup in a 60 MiB table also misses the
// TLB, and a page walk is itself a chain of cache misses (two-dimensional
// under a hypervisor); 2 MiB pages make the whole table a few dozen TLB
// entries. Where transparent huge pages are off (`never`) this is an
// ordinary mapping. The memory is touched at once, so it is held from the
// start (as the tables promise) and no lookup waits for a page fault.
#pragma once

#include <cstddef>

namespace uritoken {

class TableMemory {
 public:
  explicit TableMemory(std::size_t bytes);  // zero-filled; throws std::bad_alloc
  ~TableMemory();
  TableMemory(const TableMemory&) = delete;
  TableMemory& operator=(const TableMemory&) = delete;

  void* data() const { return data_; }
  std::size_t size() const { return bytes_; }

 private:
  void* mapping_ = nullptr;
  std::size_t mapping_bytes_ = 0;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace uritoken
