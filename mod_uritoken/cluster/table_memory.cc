// SPDX-License-Identifier: Apache-2.0
#include "table_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <new>

namespace uritoken {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
}

TableMemory::TableMemory(std::size_t bytes) : bytes_(bytes) {
  // One huge page more than asked, to start the table on a huge-page
  // boundary (mmap only promises 4 KiB alignment).
  const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  mapping_bytes_ = rounded + kHugePage;
  mapping_ = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    throw std::bad_alloc();
  }
  const auto start = reinterpret_cast<std::uintptr_t>(mapping_);
  data_ = reinterpret_cast<void*>((start + kHugePage - 1) / kHugePage * kHugePage);
  // Advice only: without huge pages (THP off, or an old kernel) the table
  // works the same on 4 KiB pages.
  (void)madvise(data_, rounded, MADV_HUGEPAGE);
  std::memset(data_, 0, bytes_);  // fault it in now (mmap gave zeros already)
}

TableMemory::~TableMemory() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

}  // namespace uritoken
