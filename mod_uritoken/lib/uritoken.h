// SPDX-License-Identifier: Apache-2.0
/*
 * liburitoken: mint and check mod_uritoken tokens from a client site.
 *
 * In the manner of libsodium: call uritoken_init() once; sizes are
 * constants; outputs come first; every buffer has an explicit length;
 * functions return 0 on success and -1 on failure; nothing is allocated
 * that the caller must free. The token format is in docs/token-format.md.
 *
 *     unsigned char key[URITOKEN_KEYBYTES];   // from your key file line
 *     char token[URITOKEN_TOKEN_MAXBYTES];
 *     if (uritoken_mint(token, sizeof token, key, 7, "site42",
 *                       (uint32_t)time(NULL) + 3600, NULL) != 0) { ... }
 *     printf("https://media.example.net/_uk_%s/gallery/photo.jpg\n", token);
 */
#ifndef URITOKEN_H
#define URITOKEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define URITOKEN_EXPORT __attribute__((visibility("default")))
#define URITOKEN_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define URITOKEN_EXPORT
#define URITOKEN_WARN_UNUSED
#endif

#define URITOKEN_KEYBYTES 32U
#define URITOKEN_SESSIONBYTES 8U
#define URITOKEN_CLIENT_MAXBYTES 33U /* 32 characters and a NUL */
#define URITOKEN_TOKEN_MAXBYTES 112U /* 111 characters and a NUL (95 without a subscriber) */
#define URITOKEN_SUBSCRIBERBYTES 8U
#define URITOKEN_SUBSCRIBER_SECRETBYTES 32U
#define URITOKEN_PREFIX "_uk_" /* the path segment is "_uk_" TOKEN */

/* Optional claims for uritoken_mint; zero-initialise and set what you need. */
typedef struct uritoken_mint_options {
  uint32_t not_before;          /* unix seconds; 0 = valid at once */
  const char *scope;            /* decoded path: "/gallery/12/" (directory)
                                   or "/gallery/12/a.jpg" (one file); NULL = any */
  const char *network;          /* client network "192.0.2.0/24",
                                   "2001:db8::/48"; NULL = any */
  const unsigned char *session; /* URITOKEN_SESSIONBYTES bytes; NULL = random */
} uritoken_mint_options;

/* The fields a token carries (uritoken_inspect, uritoken_verify). */
typedef struct uritoken_claims {
  unsigned int version;
  unsigned int key_id;
  char client[URITOKEN_CLIENT_MAXBYTES];
  unsigned char session[URITOKEN_SESSIONBYTES];
  uint32_t expires;
  uint32_t not_before;         /* 0 if none */
  int has_scope;               /* 1 if bound to a path scope */
  unsigned int scope_segments; /* how many leading path segments */
  int scope_exact;             /* 1 if the scope is one file */
  int network_family;          /* 0 none, 4 or 6 */
  unsigned int network_prefix; /* prefix length of the bound network */
} uritoken_claims;

/* Verdicts of uritoken_verify. */
#define URITOKEN_VALID 0
#define URITOKEN_INVALID 1
#define URITOKEN_EXPIRED 2

/* Parameters of uritoken_verify. */
typedef struct uritoken_verify_options {
  const char *path;         /* request path after the token, as in the URL; NULL = "/" */
  const char *client_ip;    /* client address; NULL = unknown */
  int64_t now;              /* unix seconds; 0 = current time */
  uint32_t leeway_seconds;  /* clock skew tolerated; 0 = 30 */
  uint32_t max_ttl_seconds; /* longest lifetime accepted; 0 = 7 days */
} uritoken_verify_options;

URITOKEN_EXPORT int uritoken_init(void);

/* Writes a NUL-terminated token to `token` (at least URITOKEN_TOKEN_MAXBYTES
 * bytes is always enough). `key` must be a sign key of `client`. */
URITOKEN_EXPORT int uritoken_mint(char *token, size_t token_maxlen, const unsigned char key[URITOKEN_KEYBYTES],
                                  unsigned int key_id, const char *client, uint32_t expires,
                                  const uritoken_mint_options *options);

/* Decodes a token's fields WITHOUT checking its MAC: never trust them. */
URITOKEN_EXPORT int uritoken_inspect(uritoken_claims *claims, const char *token);

/* Checks a token with one key (key_id and client as in the key file).
 * Returns URITOKEN_VALID, URITOKEN_INVALID or URITOKEN_EXPIRED; `reason`
 * (if not NULL) receives a static string such as "bad-mac". */
URITOKEN_EXPORT int uritoken_verify(uritoken_claims *claims, const char **reason, const char *token,
                                    const unsigned char key[URITOKEN_KEYBYTES], unsigned int key_id, const char *client,
                                    const uritoken_verify_options *options) URITOKEN_WARN_UNUSED;

/* The subscriber field for the site's account id `account` (any bytes up
 * to its NUL): HMAC-SHA256 under `secret`, a 32-byte secret the site keeps
 * to itself (docs/token-format.md, "Subscriber"), cut to 8 bytes. */
URITOKEN_EXPORT int uritoken_subscriber_id(unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES],
                                           const unsigned char secret[URITOKEN_SUBSCRIBER_SECRETBYTES],
                                           const char *client, const char *account);

/* As uritoken_mint, with the token bound to a subscriber (uritoken_subscriber_id)
 * and its issue time `issued` (unix seconds, at most `expires`; 0 = now). */
URITOKEN_EXPORT int uritoken_mint_subscriber(char *token, size_t token_maxlen,
                                             const unsigned char key[URITOKEN_KEYBYTES], unsigned int key_id,
                                             const char *client, uint32_t expires, const uritoken_mint_options *options,
                                             const unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES], uint32_t issued);

/* A token's subscriber field WITHOUT checking its MAC: 0 and the field if it
 * has one, 1 if it has none, -1 if the token is malformed. */
URITOKEN_EXPORT int uritoken_inspect_subscriber(unsigned char subscriber[URITOKEN_SUBSCRIBERBYTES], uint32_t *issued,
                                                const char *token);

/* Makes a fresh random key. */
URITOKEN_EXPORT void uritoken_keygen(unsigned char key[URITOKEN_KEYBYTES]);

/* The host name of one media server at one of its addresses, for URLs
 * minted for that server (docs/https.md): "203-0-113-7.<node hash>.<zone>",
 * IPv6 written out in full ("2001-0db8-0000-0000-0000-0000-0000-0007...").
 * `address` is an IPv4 or IPv6 address in text, `node_hash` the server's
 * 32 lower-case hex digits (uritoken node-identity), `zone` the cluster's
 * DNS zone (folded to lower case). -1 if any of them is not valid or the
 * name does not fit `host_maxlen` (URITOKEN_HOST_MAXBYTES always does). */
#define URITOKEN_HOST_MAXBYTES 254U /* 253 characters and a NUL */
URITOKEN_EXPORT int uritoken_host_name(char *host, size_t host_maxlen, const char *address, const char *node_hash,
                                       const char *zone);

#ifdef __cplusplus
}
#endif

#endif /* URITOKEN_H */
