// SPDX-License-Identifier: Apache-2.0
// Revocation journal for the sidecar: append-only text, one line per entry,
// so a full restart forgets nothing and ops can read it with `less`:
//
//   v1 key=7 session=1122334455667788 expires=1700003600 stamp=1700000000005 revoke shadow=0 origin=42 reason=1
//   networks=9 v1 key=7 session=1122334455667788 expires=1700003600 stamp=1700000000005 revoke shadow=0 origin=42
//   reason=1 networks=2 ev=AgQYwAACAAQYxjNkAGVT8PZlU_EAAAAA
//
// session and origin are hex. ` ev=` is present when the entry has evidence:
// base64url (no padding) of wire::encode_evidence, the bytes the REVOKE
// record carries; lines without it (older journals) still load. A torn last
// line (crash mid-write) is ignored; any other unreadable line, a bad ev=
// included, is skipped and reported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gossip.h"

namespace uritoken::gossip {

class Journal {
 public:
  Journal() = default;
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Latest winning entry per token, entries expired at `now_s` dropped. A
  // missing file is an empty journal. Unreadable lines other than a torn last
  // one are skipped and reported in *error (the entries are still returned).
  static std::vector<Revocation> load(const std::string& path, std::string* error, std::uint32_t now_s);
  static std::vector<Revocation> load(const std::string& path, std::string* error);  // now

  bool open_append(const std::string& path, std::string* error);
  bool append(const Revocation& r);  // write + fdatasync (revocations are rare)
  // Many entries with one write and one fdatasync: a node catching up with
  // its peers learns thousands at once.
  bool append(const std::vector<Revocation>& entries);
  // Compaction: the set's entries to a temporary file, fsync, rename over
  // `path`; later appends go to the new file.
  bool rewrite(const std::string& path, const RevocationSet& set, std::string* error);

  static std::string format(const Revocation& r);  // one line, with '\n'
  static bool parse(const std::string& line, Revocation& r);

 private:
  int fd_ = -1;
};

}  // namespace uritoken::gossip
