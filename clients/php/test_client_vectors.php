<?php
// SPDX-License-Identifier: Apache-2.0
// Signs every request of tests/vectors/client-requests.txt and compares the signature.
//
// Usage: php test_client_vectors.php [VECTORS_FILE]; exits 1 on any failure.

declare(strict_types=1);

require_once __DIR__ . '/uritoken_mint.php';
require_once __DIR__ . '/uritoken_client.php';
require_once __DIR__ . '/vectors.php';

$blocks = read_vectors($argv[1] ?? __DIR__ . '/../../tests/vectors/client-requests.txt');
$passed = 0;
$failed = $blocks ? 0 : 1;
foreach ($blocks as $v) {
    $body = $v['body'] === '-' ? '' : $v['body'];
    $got = UriToken\sign_client_request(UriToken\key_from_base64url($v['key']), (int)$v['key_id'], $v['method'],
                                        $v['target'], $body, (int)$v['time'], $v['nonce'])['X-UriToken-Signature'];
    $ok = $got === $v['signature'];
    $ok ? $passed++ : $failed++;
    echo ($ok ? 'ok   ' : 'FAIL ') . $v['name'] . ($ok ? '' : " got $got, want {$v['signature']}") . "\n";
}
$returns = read_vectors(__DIR__ . '/../../tests/vectors/return-urls.txt');
$failed += $returns ? 0 : 1;
foreach ($returns as $v) {
    $keys = [(int)$v['key_id'] => UriToken\key_from_base64url($v['key'])];
    $time = (int)$v['time'];
    $got = UriToken\verify_return($v['location'], $keys, $time);
    $tampered = str_replace("uritoken_time={$v['time']}", 'uritoken_time=' . ($time + 1), $v['location']);
    $ok = $got === ['reason' => $v['reason'], 'keyId' => (int)$v['key_id'],
                    'session' => $v['session'] === '-' ? null : $v['session'], 'time' => $time, 'path' => $v['path']]
        && UriToken\verify_return($tampered, $keys, $time) === null
        && UriToken\verify_return($v['location'], $keys, $time + 301) === null;
    $ok ? $passed++ : $failed++;
    echo ($ok ? 'ok   ' : 'FAIL ') . 'return ' . $v['name'] . ($ok ? '' : ' got ' . json_encode($got)) . "\n";
}
echo "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
