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
echo "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
