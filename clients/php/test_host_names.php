<?php
// SPDX-License-Identifier: Apache-2.0
// Builds every host name of tests/vectors/host-names.txt and compares (host '-': refused).
// Usage: php test_host_names.php [VECTORS_FILE]; exits 1 on any failure.

declare(strict_types=1);

require_once __DIR__ . '/uritoken_mint.php';
require_once __DIR__ . '/vectors.php';

$file = $argv[1] ?? __DIR__ . '/../../tests/vectors/host-names.txt';
$passed = $failed = 0;
$blocks = read_vectors($file);
foreach ($blocks as $v) {
    try {
        $got = UriToken\host_name($v['address'], $v['node_hash'], $v['zone']);
    } catch (InvalidArgumentException $e) {
        $got = '-';
    }
    $ok = $got === $v['host'];
    $ok ? $passed++ : $failed++;
    echo ($ok ? 'ok   ' : 'FAIL ') . $v['name'] . ($ok ? '' : " got $got, want {$v['host']}") . "\n";
}
if (!$blocks) {
    $failed++;
    echo "FAIL no vectors read\n";
}
echo "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
