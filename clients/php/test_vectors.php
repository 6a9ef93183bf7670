<?php
// SPDX-License-Identifier: Apache-2.0
// Mints every vector of tests/vectors/tokens.txt and compares the token.
//
// Usage: php test_vectors.php [VECTORS_FILE]
// Prints one line per vector and "N passed, M failed"; exits 1 on any failure.

declare(strict_types=1);

require_once __DIR__ . '/uritoken_mint.php';
require_once __DIR__ . '/vectors.php';

// The repository's vectors, found from this file's location; an argument
// overrides it (e.g. to check that a corrupted copy makes the test fail).
$file = $argv[1] ?? __DIR__ . '/../../tests/vectors/tokens.txt';


function mint_vector(array $v, array $override = []): string
{
    $opt = fn (string $s) => $s === '-' ? null : $s;
    $args = [
        'key' => UriToken\key_from_base64url($v['key']),
        'keyId' => (int) $v['key_id'],
        'client' => $v['client'],
        'expires' => (int) $v['expires'],
        'session' => hex2bin($v['session']),
        'notBefore' => $v['not_before'] === '-' ? null : (int) $v['not_before'],
        'scope' => $opt($v['scope']),
        'network' => $opt($v['network']),
    ];
    if (($v['account'] ?? '-') !== '-') {
        $args['subscriber'] = UriToken\subscriber_id(UriToken\key_from_base64url($v['subscriber_secret']),
                                                     $v['client'], $v['account']);
        $args['issued'] = (int)$v['issued'];
    }
    return UriToken\mint(...array_merge($args, $override));
}

$passed = 0;
$failed = 0;
$report = function (bool $ok, string $name, string $detail = '') use (&$passed, &$failed): void {
    $ok ? $passed++ : $failed++;
    echo ($ok ? 'PASS ' : 'FAIL ') . $name . $detail . "\n";
};

$vectors = read_vectors($file);
foreach ($vectors as $v) {
    try {
        $got = mint_vector($v);
    } catch (Throwable $e) {  // a refused vector is a failure, not a crash
        $got = 'error: ' . $e->getMessage();
    }
    $report($got === $v['token'], $v['name'], $got === $v['token'] ? '' : ": got $got, want {$v['token']}");
}

foreach ($vectors as $v) {
    if (($v['account'] ?? '-') !== '-') {
        $got = bin2hex(UriToken\subscriber_id(UriToken\key_from_base64url($v['subscriber_secret']), $v['client'],
                                              $v['account']));
        $report($got === $v['subscriber'], "{$v['name']}: subscriber_id", $got === $v['subscriber'] ? '' : ": got $got");
    }
}

// Negative checks (the comparison can fail) and one equivalence.
$byName = array_column($vectors, null, 'name');
$typical = $byName['typical'];
$ipv4 = $byName['ipv4-24'];
$report(mint_vector($typical, ['expires' => (int) $typical['expires'] + 1]) !== $typical['token'],
    'negative: changed expiry gives another token');
$report(mint_vector($typical, ['scope' => '/gallery/13/']) !== $typical['token'],
    'negative: changed scope gives another token');
$report(mint_vector($ipv4, ['network' => '192.0.2.200/24']) === $ipv4['token'],
    'extra: host bits beyond the prefix are ignored');
try {
    mint_vector($typical, ['scope' => '/gallery/../12/']);
    $report(false, 'negative: dot segment in scope is refused');
} catch (InvalidArgumentException $e) {
    $report(true, 'negative: dot segment in scope is refused');
}
try {
    mint_vector($typical, ['scope' => '/gallery/_UK_x/']);
    $report(false, 'negative: a token segment in scope is refused in any letter case');
} catch (InvalidArgumentException $e) {
    $report(true, 'negative: a token segment in scope is refused in any letter case');
}

echo "$passed passed, $failed failed\n";
exit($failed > 0 || $passed === 0 ? 1 : 0);
