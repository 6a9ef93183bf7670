<?php
// SPDX-License-Identifier: Apache-2.0
// The vector files' reader, for test_vectors.php and test_client_vectors.php.

declare(strict_types=1);

/** Blocks of "field: value" lines separated by blank lines; '#' comments. */
function read_vectors(string $file): array
{
    $text = file_get_contents($file);
    if ($text === false) {
        fwrite(STDERR, "cannot read $file\n");
        exit(1);
    }
    $blocks = [];
    $block = [];
    foreach ([...preg_split('/\r?\n/', $text), ''] as $line) {
        if (str_starts_with($line, '#')) {
            continue;
        }
        if (trim($line) === '') {
            if ($block) {
                $blocks[] = $block;
            }
            $block = [];
            continue;
        }
        [$field, $value] = array_pad(explode(': ', $line, 2), 2, '');
        if ($field !== 'check') {  // checks are for verifiers
            $block[$field] = $value;
        }
    }
    return $blocks;
}
