<?php
// SPDX-License-Identifier: Apache-2.0
// The client-site API of mod_uritoken (docs/client-api.md), PHP's standard
// functions only (hash_hmac, streams). A client site revokes its own tokens
// and reads its verdicts on any media node, with requests signed by its
// own token key:
//
//   require 'uritoken_mint.php'; require 'uritoken_client.php';
//   $key = UriToken\key_from_base64url('<secret column of the key file line>');
//   $api = 'https://media.example.net/uritoken/client';
//   UriToken\revoke($api, $key, 7, ['token' => $tokenOrUrl, 'comment' => 'logout']);
//   $page = UriToken\feed($api, $key, 7);                  // ['verdicts' => ..., 'next' => ..., 'more' => ...]
//   $page = UriToken\feed($api, $key, 7, ['after' => $page['next']]);
//
// Signatures are pinned by tests/vectors/client-requests.txt
// (test_client_vectors.php).

declare(strict_types=1);

namespace UriToken;

/** The node refused the request: getCode() is the HTTP status, $error the reason name. */
class ClientApiError extends \RuntimeException
{
    public function __construct(int $status, public readonly string $error, string $message)
    {
        parent::__construct("HTTP $status $error: $message", $status);
    }
}

/** The four X-UriToken-* headers for one request; $target is the path and query as sent. */
function sign_client_request(string $key, int $keyId, string $method, string $target, string $body = '',
                             ?int $time = null, ?string $nonce = null): array
{
    if (strlen($key) !== 32) {
        throw new \InvalidArgumentException('key must be the 32-byte secret');
    }
    if ($keyId < 1 || $keyId > 65535) {
        throw new \InvalidArgumentException('keyId must be 1..65535');
    }
    $time ??= time();
    $nonce ??= rtrim(strtr(base64_encode(random_bytes(16)), '+/', '-_'), '=');
    $mac = hash_hmac('sha256', "uritoken-client-v1\n$method\n$target\n$time\n$nonce\n$body", $key, true);
    return [
        'X-UriToken-Key' => (string)$keyId,
        'X-UriToken-Time' => (string)$time,
        'X-UriToken-Nonce' => $nonce,
        'X-UriToken-Signature' => rtrim(strtr(base64_encode($mac), '+/', '-_'), '='),
    ];
}

function client_call(string $method, string $url, string $key, int $keyId, string $body, ?string $cafile): array
{
    $parts = parse_url($url);
    $target = ($parts['path'] ?? '/') . (isset($parts['query']) ? '?' . $parts['query'] : '');
    $headers = sign_client_request($key, $keyId, $method, $target, $body);
    if ($method === 'POST') {
        $headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    $lines = [];
    foreach ($headers as $name => $value) {
        $lines[] = "$name: $value";
    }
    $context = stream_context_create([
        'http' => ['method' => $method, 'header' => $lines, 'content' => $body, 'timeout' => 10,
                   'ignore_errors' => true],
        'ssl' => $cafile === null ? [] : ['cafile' => $cafile],
    ]);
    $answer = @file_get_contents($url, false, $context);
    $status = 0;
    foreach ($http_response_header ?? [] as $h) {
        if (preg_match('#^HTTP/\S+ (\d{3})#', $h, $m)) {
            $status = (int)$m[1];
        }
    }
    if ($answer === false || $status === 0) {
        throw new ClientApiError(0, 'unreachable', "no answer from $url");
    }
    $json = json_decode($answer, true);
    if ($status !== 200) {
        throw new ClientApiError($status, $json['error'] ?? 'unknown', $json['message'] ?? '');
    }
    return $json;
}

/**
 * Revokes one of the client's tokens on every node: ['token' => token or URL], or
 * ['session' => hex, 'tokenKeyId' => n, 'expires' => unix], or ['subscriber' => 16 hex digits]
 * (every token so far of that subscriber; with 'issuedBefore' => unix time not in the future,
 * those issued before it); optional 'comment', 'cafile'.
 */
function revoke(string $apiUrl, string $key, int $keyId, array $what): array
{
    $fields = isset($what['subscriber']) ? ['subscriber' => $what['subscriber']]
        : (isset($what['token']) ? ['token' => $what['token']]
            : ['key' => (string)$what['tokenKeyId'], 'session' => $what['session'],
               'expires' => (string)$what['expires']]);
    if (isset($what['subscriber'], $what['issuedBefore'])) {
        $fields['issued_before'] = (string)$what['issuedBefore'];
    }
    if (isset($what['comment'])) {
        $fields['comment'] = $what['comment'];
    }
    return client_call('POST', $apiUrl, $key, $keyId, http_build_query($fields, '', '&', PHP_QUERY_RFC3986),
                       $what['cafile'] ?? null);
}

/** One page of the client's verdicts after the cursor 'after' (a page's 'next'); optional 'limit', 'cafile'. */
function feed(string $apiUrl, string $key, int $keyId, array $options = []): array
{
    $query = array_filter(['after' => $options['after'] ?? null, 'limit' => $options['limit'] ?? null]);
    $url = $apiUrl . ($query ? '?' . http_build_query($query, '', '&', PHP_QUERY_RFC3986) : '');
    return client_call('GET', $url, $key, $keyId, '', $options['cafile'] ?? null);
}

/**
 * Checks where a refused viewer was sent back (UriTokenReturnURL, docs/client-api.md). $keys maps
 * key ids to 32-byte secrets. Returns ['reason', 'keyId', 'session' (or null), 'time', 'path'] if
 * the signature is good and the time within $maxAge seconds, else null.
 */
function verify_return(string $urlOrQuery, array $keys, ?int $now = null, int $maxAge = 300): ?array
{
    $query = str_contains($urlOrQuery, '://') ? (string)parse_url($urlOrQuery, PHP_URL_QUERY) : ltrim($urlOrQuery, '?');
    $f = [];
    foreach (explode('&', $query) as $pair) {  // not parse_str: it would mangle names and decode '+'
        [$name, $value] = array_pad(explode('=', $pair, 2), 2, '');
        $f[rawurldecode($name)] = rawurldecode($value);
    }
    foreach (['uritoken_key', 'uritoken_time', 'uritoken_reason', 'uritoken_path', 'uritoken_sig'] as $name) {
        if (!isset($f[$name])) {
            return null;
        }
    }
    if (!ctype_digit($f['uritoken_key']) || !ctype_digit($f['uritoken_time'])) {
        return null;
    }
    $keyId = (int)$f['uritoken_key'];
    $time = (int)$f['uritoken_time'];
    $session = $f['uritoken_session'] ?? '';
    $now ??= time();
    if (!isset($keys[$keyId]) || abs($now - $time) > $maxAge) {
        return null;
    }
    $signed = implode("\n", ['uritoken-return-v1', $f['uritoken_reason'], (string)$keyId, $session, (string)$time,
                             $f['uritoken_path']]);
    $want = rtrim(strtr(base64_encode(hash_hmac('sha256', $signed, $keys[$keyId], true)), '+/', '-_'), '=');
    if (!hash_equals($want, $f['uritoken_sig'])) {
        return null;
    }
    return ['reason' => $f['uritoken_reason'], 'keyId' => $keyId, 'session' => $session === '' ? null : $session,
            'time' => $time, 'path' => $f['uritoken_path']];
}
