#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
'use strict';
// Signs every request of tests/vectors/client-requests.txt and compares the signature.
//
// Usage: node test_client_vectors.js [VECTORS_FILE]; exits 1 on any failure.

const path = require('path');
const { readVectors } = require('./test_vectors');
const { keyFromBase64url } = require('./uritoken_mint');
const { signClientRequest, verifyReturn } = require('./uritoken_client');

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
const RETURNS = path.join(__dirname, '..', '..', 'tests', 'vectors', 'return-urls.txt');
const returns = readVectors(RETURNS);
if (!returns.length) failed++;
for (const v of returns) {
  const keys = { [Number(v.key_id)]: keyFromBase64url(v.key) }, time = Number(v.time);
  const got = verifyReturn(v.location, keys, { now: time });
  const tampered = v.location.replace(`uritoken_time=${v.time}`, `uritoken_time=${time + 1}`);
  const ok = got !== null && got.reason === v.reason && got.keyId === Number(v.key_id) &&
    got.session === (v.session === '-' ? null : v.session) && got.time === time && got.path === v.path &&
    verifyReturn(tampered, keys, { now: time }) === null && verifyReturn(v.location, keys, { now: time + 301 }) === null;
  ok ? passed++ : failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} return ${v.name}${ok ? '' : ` got ${JSON.stringify(got)}`}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
