#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
'use strict';
// Mints every vector of tests/vectors/tokens.txt and compares the token.
//
// Usage: node test_vectors.js [VECTORS_FILE]
// Prints one line per vector and "N passed, M failed"; exits 1 on any failure.

const fs = require('fs');
const path = require('path');
const { mint, keyFromBase64url, subscriberId } = require('./uritoken_mint');

// The repository's vectors, found from this file's location; an argument
// overrides it (e.g. to check that a corrupted copy makes the test fail).
const VECTORS = process.argv[2] || path.join(__dirname, '..', '..', 'tests', 'vectors', 'tokens.txt');

// Blocks of "field: value" lines separated by blank lines; '#' comments.
function readVectors(file) {
  const blocks = [];
  let block = {};
  for (const line of [...fs.readFileSync(file, 'utf8').split(/\r?\n/), '']) {
    if (line.startsWith('#')) continue;
    if (line.trim() === '') {
      if (Object.keys(block).length) blocks.push(block);
      block = {};
      continue;
    }
    const at = line.indexOf(': ');
    const field = at < 0 ? line : line.slice(0, at);
    if (field !== 'check') block[field] = at < 0 ? '' : line.slice(at + 2);  // checks are for verifiers
  }
  return blocks;
}

const opt = (v) => (v === '-' ? undefined : v);

function mintVector(v, override = {}) {
  const a = {
    key: keyFromBase64url(v.key),
    keyId: Number(v.key_id),
    client: v.client,
    expires: Number(v.expires),
    session: Buffer.from(v.session, 'hex'),
    notBefore: v.not_before === '-' ? undefined : Number(v.not_before),
    scope: opt(v.scope),
    network: opt(v.network),
    subscriber: v.account && v.account !== '-'
      ? subscriberId(keyFromBase64url(v.subscriber_secret), v.client, v.account) : undefined,
    issued: v.issued && v.issued !== '-' ? Number(v.issued) : undefined,
    ...override,
  };
  return mint(a.key, a.keyId, a.client, a.expires, {
    session: a.session, notBefore: a.notBefore, scope: a.scope, network: a.network, subscriber: a.subscriber,
    issued: a.issued,
  });
}

let passed = 0, failed = 0;
function report(ok, name, detail = '') {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail}`);
}

function main() {
  const vectors = readVectors(VECTORS);
  for (const v of vectors) {
    let got;
    try {
      got = mintVector(v);
    } catch (e) {  // a refused vector is a failure, not a crash
      got = `error: ${e.message}`;
    }
    report(got === v.token, v.name, got === v.token ? '' : `: got ${got}, want ${v.token}`);
  }

  for (const v of vectors.filter((x) => x.account && x.account !== '-')) {
    const got = subscriberId(keyFromBase64url(v.subscriber_secret), v.client, v.account).toString('hex');
    report(got === v.subscriber, `${v.name}: subscriberId`, got === v.subscriber ? '' : `: got ${got}`);
  }

  // Negative checks (the comparison can fail) and one equivalence.
  const byName = Object.fromEntries(vectors.map((v) => [v.name, v]));
  const typical = byName.typical, ipv4 = byName['ipv4-24'];
  report(mintVector(typical, { expires: Number(typical.expires) + 1 }) !== typical.token,
    'negative: changed expiry gives another token');
  report(mintVector(typical, { scope: '/gallery/13/' }) !== typical.token,
    'negative: changed scope gives another token');
  report(mintVector(ipv4, { network: '192.0.2.200/24' }) === ipv4.token,
    'extra: host bits beyond the prefix are ignored');
  let refused = false;
  try {
    mintVector(typical, { scope: '/gallery/../12/' });
  } catch (e) {
    refused = e instanceof RangeError;
  }
  report(refused, 'negative: dot segment in scope is refused');
  refused = false;
  try {
    mintVector(typical, { scope: '/gallery/_UK_x/' });
  } catch (e) {
    refused = e instanceof RangeError;
  }
  report(refused, 'negative: a token segment in scope is refused in any letter case');

  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed || passed === 0 ? 1 : 0;
}

module.exports = { readVectors };
if (require.main === module) main();
