#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Builds every host name of tests/vectors/host-names.txt and compares (host '-': refused).
// Usage: node test_host_names.js [VECTORS_FILE]; exits 1 on any failure.
'use strict';

const path = require('path');
const { readVectors } = require('./test_vectors');
const { hostName } = require('./uritoken_mint');

const VECTORS = process.argv[2] || path.join(__dirname, '..', '..', 'tests', 'vectors', 'host-names.txt');
let passed = 0;
let failed = 0;
const blocks = readVectors(VECTORS);
for (const v of blocks) {
  let got;
  try {
    got = hostName(v.address, v.node_hash, v.zone);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;  // a refusal, not a bug
    got = '-';
  }
  const ok = got === v.host;
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${v.name}${ok ? '' : ` got ${got}, want ${v.host}`}`);
}
if (blocks.length === 0) {
  failed += 1;
  console.log('FAIL no vectors read');
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
