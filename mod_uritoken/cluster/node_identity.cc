// SPDX-License-Identifier: Apache-2.0
// A node's identity key and hash; see node_identity.h.
#include "node_identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../core/base64url.h"
#include "../core/host_name.h"
#include "../core/keyring.h"

namespace uritoken::cluster {

namespace {

bool write_new(const std::string& path, const std::string& line, std::string* error) {
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool written = write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  const bool closed = close(fd) == 0;
  // link(), not rename(): if another process made the file meanwhile, its key stays.
  const bool linked = written && closed && (link(tmp.c_str(), path.c_str()) == 0 || errno == EEXIST);
  if (!linked) *error = "cannot write " + path + ": " + std::strerror(errno);
  unlink(tmp.c_str());
  return linked;
}

}  // namespace

std::optional<NodeIdentity> load_node_identity(const std::string& path, bool create, std::string* error) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) {
      *error = "cannot read " + path + ": " + std::strerror(errno);
      return std::nullopt;
    }
    std::uint8_t seed[crypto_sign_SEEDBYTES];
    randombytes_buf(seed, sizeof seed);
    const std::string line = base64url_encode(seed, sizeof seed) + "\n";
    sodium_memzero(seed, sizeof seed);
    if (!write_new(path, line, error)) return std::nullopt;
    auto made = load_node_identity(path, false, error);
    if (made) made->created = true;
    return made;
  }
  std::string text;
  if (!read_protected_file(path, &text, error)) return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  std::uint8_t seed[crypto_sign_SEEDBYTES];
  if (base64url_decode(seed, sizeof seed, text) != static_cast<long>(sizeof seed)) {
    *error = path +
             " is not a node key (one line: 43 base64url characters); move it away and restart to make a "
             "new one (the node's name and certificate change with it)";
    return std::nullopt;
  }
  NodeIdentity id;
  std::uint8_t secret[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(id.public_key.data(), secret, seed);
  sodium_memzero(secret, sizeof secret);
  sodium_memzero(seed, sizeof seed);
  id.hash = node_hash(id.public_key.data());
  return id;
}

}  // namespace uritoken::cluster
