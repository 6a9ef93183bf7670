<?php
// SPDX-License-Identifier: Apache-2.0
// Reference minter for mod_uritoken tokens (format v1), PHP 8.2, no
// extensions beyond the defaults (hash, random, inet_pton). The format is
// specified in docs/token-format.md and pinned by tests/vectors/tokens.txt
// (see test_vectors.php).
//
//   require_once 'uritoken_mint.php';
//   $key = UriToken\key_from_base64url('<secret column of the key file line>');
//   $token = UriToken\mint($key, 7, 'site42', time() + 3600, scope: '/gallery/12/');
//   $url = "https://media.example.net/_uk_{$token}/gallery/12/photo.jpg";

declare(strict_types=1);

namespace UriToken;

use InvalidArgumentException;

const VERSION = 1;
const FLAG_NOT_BEFORE = 0x01;
const FLAG_SCOPE = 0x02;
const FLAG_IPV4 = 0x04;
const FLAG_IPV6 = 0x08;
const FLAG_SUBSCRIBER = 0x10;
const SCOPE_EXACT = 0x80;

function b64url_encode(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

/** Decodes the 43-character secret of a key file line into its 32 bytes. */
function key_from_base64url(string $text): string
{
    if (!preg_match('/^[A-Za-z0-9_-]{43}$/D', $text)) {
        throw new InvalidArgumentException('key must be 43 characters of base64url without padding');
    }
    $key = base64_decode(strtr($text, '-_', '+/') . '=', true);
    if ($key === false || b64url_encode($key) !== $text) {
        throw new InvalidArgumentException('key is not canonical base64url');
    }
    return $key;
}

/**
 * [descriptor byte, canonical path] for a decoded scope path: "/gallery/12/"
 * (trailing slash) is a directory prefix, "/video/a.mp4" one exact file;
 * repeated slashes are merged.
 */
function scope_of(string $scope): array
{
    if (!str_starts_with($scope, '/') || strpbrk($scope, "%\0") !== false) {
        throw new InvalidArgumentException("scope must be an absolute, decoded path (no '%')");
    }
    $segments = array_values(array_filter(explode('/', $scope), fn ($s) => $s !== ''));
    foreach ($segments as $seg) {
        if ($seg === '.' || $seg === '..' || str_starts_with(strtolower($seg), '_uk_')) {
            throw new InvalidArgumentException("scope segment '$seg' is not allowed");
        }
    }
    if (count($segments) < 1 || count($segments) > 127) {
        throw new InvalidArgumentException('scope must have 1 to 127 segments');
    }
    $exact = !str_ends_with($scope, '/');
    $path = '/' . implode('/', $segments) . ($exact ? '' : '/');
    if (strlen($path) > 0xffff) {
        throw new InvalidArgumentException('scope is too long');
    }
    return [count($segments) | ($exact ? SCOPE_EXACT : 0), $path];
}

/**
 * [flag, prefix length, masked address bytes] for "a.b.c.d/n", "x:y::/n" or
 * a bare address (full length). IPv4-mapped IPv6 is treated as IPv4.
 */
function network_of(string $network): array
{
    $parts = explode('/', $network);
    $addr = count($parts) <= 2 ? @inet_pton($parts[0]) : false;
    if ($addr === false) {
        throw new InvalidArgumentException("'$network' is not an IP address or network");
    }
    if (strlen($addr) === 16 && str_starts_with($addr, str_repeat("\0", 10) . "\xff\xff")) {
        $addr = substr($addr, 12);
    }
    $bits = strlen($addr) * 8;
    $length = $bits;
    if (count($parts) === 2) {
        if (!preg_match('/^[0-9]{1,3}$/D', $parts[1])) {
            throw new InvalidArgumentException('network prefix length must be a number');
        }
        $length = (int) $parts[1];
    }
    if ($length < 1 || $length > $bits) {
        throw new InvalidArgumentException("network prefix length must be 1 to $bits");
    }
    for ($i = 0; $i < strlen($addr); $i++) {
        $keep = min(max($length - 8 * $i, 0), 8);
        $addr[$i] = chr(ord($addr[$i]) & ((0xff00 >> $keep) & 0xff));
    }
    return [$bits === 32 ? FLAG_IPV4 : FLAG_IPV6, $length, $addr];
}

/**
 * Mints a token: the characters to put after "/_uk_" in the URL.
 *
 * @param string      $key        the 32-byte secret (key_from_base64url of the key file column)
 * @param int         $keyId      the key's id, 1..65535
 * @param string      $client     the key's client id, 1..32 of [A-Za-z0-9._-]
 * @param int         $expires    unix seconds (u32); the server refuses more than its
 *                                UriTokenMaxTTL (default 7 days) ahead
 * @param string|null $session    8 raw bytes; random if null (fix it only for tests)
 * @param int|null    $notBefore  unix seconds, earlier than $expires
 * @param string|null $scope      decoded path "/dir/sub/" (a tree) or "/dir/file.mp4" (one file)
 * @param string|null $network    client network "192.0.2.0/24", "2001:db8::/48" or one address
 */
function mint(string $key, int $keyId, string $client, int $expires, ?string $session = null,
              ?int $notBefore = null, ?string $scope = null, ?string $network = null,
              ?string $subscriber = null, ?int $issued = null): string
{
    if (strlen($key) !== 32) {
        throw new InvalidArgumentException('key must be 32 bytes');
    }
    if ($keyId < 1 || $keyId > 0xffff) {
        throw new InvalidArgumentException('keyId must be 1 to 65535');
    }
    if (!preg_match('/^[A-Za-z0-9._-]{1,32}$/D', $client)) {
        throw new InvalidArgumentException('client must be 1 to 32 of A-Z a-z 0-9 . _ -');
    }
    if ($expires < 0 || $expires > 0xffffffff) {
        throw new InvalidArgumentException('expires must fit in 32 bits');
    }
    $session ??= random_bytes(8);
    if (strlen($session) !== 8) {
        throw new InvalidArgumentException('session must be 8 bytes');
    }

    $flags = 0;
    $optional = '';
    $bound = '';
    if ($notBefore !== null) {
        if ($notBefore < 0 || $notBefore >= $expires) {
            throw new InvalidArgumentException('notBefore must be earlier than expires');
        }
        $flags |= FLAG_NOT_BEFORE;
        $optional .= pack('N', $notBefore);
    }
    if ($scope !== null) {
        [$descriptor, $path] = scope_of($scope);
        $flags |= FLAG_SCOPE;
        $optional .= chr($descriptor);
        $bound .= pack('n', strlen($path)) . $path;
    }
    if ($network !== null) {
        [$flag, $length, $masked] = network_of($network);
        $flags |= $flag;
        $optional .= chr($length);
        $bound .= $masked;
    }
    if ($subscriber !== null) {
        $issued ??= time();
        if (strlen($subscriber) !== 8) {
            throw new \InvalidArgumentException('subscriber must be 8 bytes (subscriber_id)');
        }
        if ($issued < 0 || $issued > $expires) {
            throw new \InvalidArgumentException('issued must not be later than expires');
        }
        $flags |= FLAG_SUBSCRIBER;
        $optional .= $subscriber . pack('N', $issued);
    }

    $payload = pack('CCnN', VERSION, $flags, $keyId, $expires) . $session . $optional
        . chr(strlen($client)) . $client;
    $tag = substr(hash_hmac('sha256', $payload . $bound, $key, true), 0, 16);
    return b64url_encode($payload . $tag);
}

/**
 * The 8-byte subscriber field for the site's account id (docs/token-format.md, "Subscriber"):
 * $secret is 32 bytes the site keeps to itself (never a token key), $account any string
 * (UTF-8 as stored). No personal identifier reaches a URL.
 */
function subscriber_id(string $secret, string $client, string $account): string
{
    if (strlen($secret) !== 32) {
        throw new \InvalidArgumentException('secret must be 32 bytes');
    }
    if (!preg_match('/^[A-Za-z0-9._-]{1,32}$/', $client)) {
        throw new \InvalidArgumentException('client must be 1 to 32 of A-Z a-z 0-9 . _ -');
    }
    return substr(hash_hmac('sha256', "uritoken-subscriber-v1\n$client\n$account", $secret, true), 0, 8);
}

/**
 * The host name of one media server at one of its addresses (docs/https.md):
 * host_name('203.0.113.7', $nodeHash, 'media.example.net') is
 * '203-0-113-7.<nodeHash>.media.example.net'; IPv6 written out in full.
 */
function host_name(string $address, string $nodeHash, string $zone): string
{
    if (!preg_match('/^[0-9a-f]{32}$/D', $nodeHash)) {
        throw new InvalidArgumentException('nodeHash must be 32 lower-case hex digits (uritoken node-identity)');
    }
    $apex = strtolower(str_ends_with($zone, '.') ? substr($zone, 0, -1) : $zone);
    $labels = explode('.', $apex);
    foreach ($labels as $label) {
        if (!preg_match('/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/D', $label)) {
            $labels = [];
            break;
        }
    }
    if (count($labels) < 2) {
        throw new InvalidArgumentException("zone is not a host name (letters, digits and '-' in dot-separated labels)");
    }
    $addr = str_contains($address, '/') ? false : @inet_pton($address);
    if ($addr === false) {
        throw new InvalidArgumentException("'$address' is not an IP address");
    }
    if (strlen($addr) === 16 && str_starts_with($addr, str_repeat("\0", 10) . "\xff\xff")) {
        $addr = substr($addr, 12);
    }
    $label = strlen($addr) === 4 ? implode('-', array_map('ord', str_split($addr)))
        : implode('-', str_split(bin2hex($addr), 4));
    $name = "$label.$nodeHash.$apex";
    if (strlen($name) > 253) {
        throw new InvalidArgumentException('zone is too long: the host name would pass 253 characters');
    }
    return $name;
}
