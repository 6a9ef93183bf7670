#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
'use strict';
// Signs every request of tests/vectors/client-requests.txt and compares the signature.
//
// Usage: node test_client_vectors.js [VECTORS_FILE]; exits 1 on any failure.

const path = require('path');
const { readVectors } = require('./test_vectors');
const { keyFromBase64url } = require('./uritoken_mint');
const { signClientRequest } = require('./uritoken_client');

const VECTORS = process.argv[2] || path.join(__dirname, '..', '..', 'tests', 'vectors', 'client-requests.txt');
const blocks = readVectors(VECTORS);
let passed = 0, failed = blocks.length ? 0 : 1;
for (const v of blocks) {
  const body = v.body === '-' ? '' : v.body;
  const got = signClientRequest(keyFromBase64url(v.key), Number(v.key_id), v.method, v.target, body,
    { time: Number(v.time), nonce: v.nonce })['X-UriToken-Signature'];
  const ok = got === v.signature;
  ok ? passed++ : failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${v.name}${ok ? '' : ` got ${got}, want ${v.signature}`}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
