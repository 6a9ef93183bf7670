// SPDX-License-Identifier: Apache-2.0
#include "journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string_view>

#include "wire.h"
#include "../mod_uritoken/core/base64url.h"

namespace uritoken::gossip {
namespace {

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Journal::format(const Revocation& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "v1 key=%u session=%016" PRIx64 " expires=%u stamp=%" PRIu64 " %s shadow=%d origin=%" PRIx64
                " reason=%u networks=%u\n",
                unsigned(r.token.key_id), r.token.session, unsigned(r.token_expires), r.stamp_ms,
                r.pardon ? "pardon" : "revoke", r.shadow ? 1 : 0, r.origin, static_cast<unsigned>(r.reason),
                unsigned(r.networks));
  std::string line = buf;
  std::vector<std::uint8_t> ev;  // why it was revoked: ` ev=` + base64url of wire::encode_evidence
  wire::encode_evidence(r.evidence, ev);
  if (!ev.empty()) line.insert(line.size() - 1, " ev=" + base64url_encode(ev.data(), ev.size()));
  if (!r.evidence.places.empty()) {  // where: ` pl=` + base64url of wire::encode_places
    std::vector<std::uint8_t> pl;
    wire::encode_places(r.evidence, pl);
    line.insert(line.size() - 1, " pl=" + base64url_encode(pl.data(), pl.size()));
  }
  if (wire::has_times_or_rate(r.evidence)) {  // when, and a bulk rate: ` tr=` + wire::encode_times_and_rate
    std::vector<std::uint8_t> tr;
    wire::encode_times_and_rate(r.evidence, tr);
    line.insert(line.size() - 1, " tr=" + base64url_encode(tr.data(), tr.size()));
  }
  return line;
}

bool Journal::parse(const std::string& line, Revocation& r) {
  unsigned key = 0, expires = 0, reason = 0, networks = 0;
  int shadow = 0, used = 0;
  std::uint64_t session = 0, stamp = 0, origin = 0;
  char kind[8] = {};
  int n = std::sscanf(line.c_str(),
                      "v1 key=%u session=%" SCNx64 " expires=%u stamp=%" SCNu64 " %7s shadow=%d origin=%" SCNx64
                      " reason=%u networks=%u%n",
                      &key, &session, &expires, &stamp, kind, &shadow, &origin, &reason, &networks, &used);
  if (n != 9) return false;
  // Optional evidence, strictly decoded: a torn or altered ev= is malformed.
  Evidence evidence;
  std::string_view rest = std::string_view(line).substr(static_cast<std::size_t>(used));
  constexpr std::string_view kEv = " ev=", kPl = " pl=", kTr = " tr=";
  std::string_view places, times;
  if (const std::size_t at = rest.find(kTr); at != std::string_view::npos) {
    times = rest.substr(at + kTr.size());
    rest = rest.substr(0, at);
  }
  if (const std::size_t at = rest.find(kPl); at != std::string_view::npos) {
    places = rest.substr(at + kPl.size());
    rest = rest.substr(0, at);
  }
  if (!rest.empty()) {
    if (rest.substr(0, kEv.size()) != kEv) return false;
    std::uint8_t bytes[wire::kMaxEvidenceSize];
    long len = base64url_decode(bytes, sizeof bytes, rest.substr(kEv.size()));
    if (len <= 0 || !wire::decode_evidence(bytes, static_cast<std::size_t>(len), evidence)) return false;
  }
  if (!places.empty()) {
    std::uint8_t bytes[wire::kMaxPlacesSize];
    long len = base64url_decode(bytes, sizeof bytes, places);
    if (len <= 0 || !wire::decode_places(bytes, static_cast<std::size_t>(len), evidence)) return false;
  }
  if (!times.empty()) {
    std::uint8_t bytes[wire::kMaxTimesAndRateSize];
    long len = base64url_decode(bytes, sizeof bytes, times);
    if (len <= 0 || !wire::decode_times_and_rate(bytes, static_cast<std::size_t>(len), evidence)) return false;
  }
  if (key > 0xffff || reason > 0xff || networks > 0xff || (shadow != 0 && shadow != 1)) return false;
  bool pardon = std::strcmp(kind, "pardon") == 0;
  if (!pardon && std::strcmp(kind, "revoke") != 0) return false;
  r = Revocation{};
  r.token = {static_cast<std::uint16_t>(key), session};
  r.token_expires = expires;
  r.stamp_ms = stamp;
  r.pardon = pardon;
  r.shadow = shadow;
  r.origin = origin;
  r.reason = static_cast<VerdictReason>(reason);
  r.networks = static_cast<std::uint8_t>(networks);
  r.evidence = std::move(evidence);
  return true;
}

std::vector<Revocation> Journal::load(const std::string& path, std::string* error) {
  return load(path, error, static_cast<std::uint32_t>(std::time(nullptr)));
}

std::vector<Revocation> Journal::load(const std::string& path, std::string* error, std::uint32_t now_s) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  RevocationSet set;
  std::size_t bad = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // torn last line
    Revocation r;
    if (parse(text.substr(pos, nl - pos), r))
      set.merge(r);
    else
      ++bad;
    pos = nl + 1;
  }
  if (bad && error) *error = path + ": skipped " + std::to_string(bad) + " unreadable line(s)";
  set.expire(now_s);
  return set.snapshot();
}

bool Journal::open_append(const std::string& path, std::string* error) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    if (error) *error = "open " + path + ": " + std::strerror(errno);
    return false;
  }
  // After a torn write, start on a fresh line so the next entry is readable.
  off_t end = ::lseek(fd_, 0, SEEK_END);
  char last = '\n';
  if (end > 0 && ::pread(fd_, &last, 1, end - 1) == 1 && last != '\n' && !write_all(fd_, "\n")) {
    if (error) *error = "write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool Journal::append(const Revocation& r) { return fd_ >= 0 && write_all(fd_, format(r)) && ::fdatasync(fd_) == 0; }

bool Journal::append(const std::vector<Revocation>& entries) {
  if (entries.empty()) return fd_ >= 0;
  std::string out;
  for (const Revocation& r : entries) out += format(r);
  return fd_ >= 0 && write_all(fd_, out) && ::fdatasync(fd_) == 0;
}

bool Journal::rewrite(const std::string& path, const RevocationSet& set, std::string* error) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  auto fail = [&](const char* what) {
    if (error) *error = std::string(what) + " " + tmp + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  };
  if (fd < 0) return fail("open");
  std::string out;
  set.for_each([&](const Revocation& r) { out += format(r); });
  if (!write_all(fd, out)) return fail("write");
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    fd = -1;
    return fail("close");
  }
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  int dir = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);  // make the rename durable
    ::close(dir);
  }
  return open_append(path, error);
}

}  // namespace uritoken::gossip
