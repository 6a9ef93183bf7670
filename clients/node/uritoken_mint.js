// SPDX-License-Identifier: Apache-2.0
'use strict';
// Reference minter for mod_uritoken tokens (format v1): node's crypto and
// net only. The format is specified in docs/token-format.md and pinned by
// tests/vectors/tokens.txt (see test_vectors.js).
//
//   const { mint, keyFromBase64url } = require('./uritoken_mint');
//   const key = keyFromBase64url('<secret column of the key file line>');
//   const token = mint(key, 7, 'site42', Math.floor(Date.now() / 1000) + 3600,
//                      { scope: '/gallery/12/' });
//   const url = `https://media.example.net/_uk_${token}/gallery/12/photo.jpg`;

const crypto = require('crypto');
const net = require('net');

const VERSION = 1;
const FLAG_NOT_BEFORE = 0x01, FLAG_SCOPE = 0x02, FLAG_IPV4 = 0x04, FLAG_IPV6 = 0x08, FLAG_SUBSCRIBER = 0x10;
const SCOPE_EXACT = 0x80;

function fail(message) {
  throw new RangeError(message);
}

/** Decodes the 43-character secret of a key file line into its 32 bytes. */
function keyFromBase64url(text) {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) fail('key must be 43 characters of base64url without padding');
  const key = Buffer.from(text, 'base64url');
  if (key.toString('base64url') !== text) fail('key is not canonical base64url');
  return key;
}

function u32(value, what) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) fail(`${what} must fit in 32 bits`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

// [descriptor byte, canonical path bytes] for a decoded scope path:
// "/gallery/12/" (trailing slash) is a directory prefix, "/video/a.mp4" one
// exact file; repeated slashes are merged.
function scopeOf(scope) {
  if (typeof scope !== 'string' || !scope.startsWith('/') || /[%\0]/.test(scope)) {
    fail("scope must be an absolute, decoded path (no '%')");
  }
  const segments = scope.split('/').filter((s) => s !== '');
  for (const seg of segments) {
    if (seg === '.' || seg === '..' || seg.toLowerCase().startsWith('_uk_')) fail(`scope segment '${seg}' is not allowed`);
  }
  if (segments.length < 1 || segments.length > 127) fail('scope must have 1 to 127 segments');
  const exact = !scope.endsWith('/');
  const path = Buffer.from('/' + segments.join('/') + (exact ? '' : '/'), 'utf8');
  if (path.length > 0xffff) fail('scope is too long');
  return [segments.length | (exact ? SCOPE_EXACT : 0), path];
}

// The bytes of an IPv4 (4) or IPv6 (16) address; IPv4-mapped IPv6 gives 4.
function ipBytes(text) {
  if (net.isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (text.includes('%') || !net.isIPv6(text)) fail(`'${text}' is not an IP address`);
  let groups = text.split(':');
  const last = groups[groups.length - 1];
  if (last.includes('.')) {  // embedded IPv4: two more 16-bit groups
    const v4 = last.split('.').map(Number);
    groups.splice(-1, 1, ((v4[0] << 8) | v4[1]).toString(16), ((v4[2] << 8) | v4[3]).toString(16));
  }
  const gap = groups.indexOf('');
  if (gap >= 0) {  // "::": drop the empty strings and fill with zero groups
    const head = text.startsWith('::') ? [] : groups.slice(0, gap);
    const tail = groups.slice(gap).filter((g) => g !== '');
    groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  }
  const bytes = Buffer.alloc(16);
  groups.forEach((g, i) => bytes.writeUInt16BE(parseInt(g, 16), 2 * i));
  const mapped = bytes.subarray(0, 12).equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]));
  return mapped ? bytes.subarray(12) : bytes;
}

// [flag, prefix length, masked address bytes] for "a.b.c.d/n", "x:y::/n" or
// a bare address (full length).
function networkOf(network) {
  const [addrText, lengthText, extra] = String(network).split('/');
  const addr = ipBytes(addrText);
  const bits = addr.length * 8;
  let length = bits;
  if (lengthText !== undefined) {
    if (extra !== undefined || !/^[0-9]{1,3}$/.test(lengthText)) fail('network prefix length must be a number');
    length = Number(lengthText);
  }
  if (length < 1 || length > bits) fail(`network prefix length must be 1 to ${bits}`);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.min(Math.max(length - 8 * i, 0), 8);
    addr[i] &= (0xff00 >> keep) & 0xff;
  }
  return [bits === 32 ? FLAG_IPV4 : FLAG_IPV6, length, addr];
}

/**
 * Mints a token: the characters to put after "/_uk_" in the URL.
 *
 * @param {Buffer} key      the 32-byte secret (keyFromBase64url of the key file column)
 * @param {number} keyId    the key's id, 1..65535
 * @param {string} client   the key's client id, 1..32 of [A-Za-z0-9._-]
 * @param {number} expires  unix seconds (u32); the server refuses more than its
 *                          UriTokenMaxTTL (default 7 days) ahead
 * @param {object} [opts]
 * @param {Buffer} [opts.session]    8 bytes; random if absent (fix it only for tests)
 * @param {number} [opts.notBefore]  unix seconds, earlier than expires
 * @param {string} [opts.scope]      decoded path "/dir/sub/" (a tree) or "/dir/file.mp4" (one file)
 * @param {string} [opts.network]    client network "192.0.2.0/24", "2001:db8::/48" or one address
 * @param {Buffer} [opts.subscriber] 8 bytes (subscriberId); absent: bound to no subscriber
 * @param {number} [opts.issued]     with a subscriber: when minted, unix seconds (default now), not after expires
 * @returns {string}
 */
function mint(key, keyId, client, expires, { session, notBefore, scope, network, subscriber, issued } = {}) {
  if (!Buffer.isBuffer(key) || key.length !== 32) fail('key must be a 32-byte Buffer');
  if (!Number.isInteger(keyId) || keyId < 1 || keyId > 0xffff) fail('keyId must be 1 to 65535');
  if (typeof client !== 'string' || !/^[A-Za-z0-9._-]{1,32}$/.test(client)) {
    fail('client must be 1 to 32 of A-Z a-z 0-9 . _ -');
  }
  session = session == null ? crypto.randomBytes(8) : Buffer.from(session);
  if (session.length !== 8) fail('session must be 8 bytes');

  let flags = 0;
  const optional = [], bound = [];
  if (notBefore != null) {
    optional.push(u32(notBefore, 'notBefore'));
    if (notBefore >= expires) fail('notBefore must be earlier than expires');
    flags |= FLAG_NOT_BEFORE;
  }
  if (scope != null) {
    const [descriptor, path] = scopeOf(scope);
    flags |= FLAG_SCOPE;
    optional.push(Buffer.from([descriptor]));
    const len = Buffer.alloc(2);
    len.writeUInt16BE(path.length);
    bound.push(len, path);
  }
  if (network != null) {
    const [flag, length, masked] = networkOf(network);
    flags |= flag;
    optional.push(Buffer.from([length]));
    bound.push(masked);
  }
  if (subscriber != null) {
    subscriber = Buffer.from(subscriber);
    issued = issued == null ? Math.floor(Date.now() / 1000) : issued;
    if (subscriber.length !== 8) fail('subscriber must be 8 bytes (subscriberId)');
    if (issued > expires) fail('issued must not be later than expires');
    flags |= FLAG_SUBSCRIBER;
    optional.push(subscriber, u32(issued, 'issued'));
  }
  const head = Buffer.alloc(4);
  head.writeUInt8(VERSION, 0);
  head.writeUInt8(flags, 1);
  head.writeUInt16BE(keyId, 2);
  const payload = Buffer.concat([head, u32(expires, 'expires'), session, ...optional,
    Buffer.from([client.length]), Buffer.from(client, 'ascii')]);
  const tag = crypto.createHmac('sha256', key).update(payload).update(Buffer.concat(bound)).digest().subarray(0, 16);
  return Buffer.concat([payload, tag]).toString('base64url');
}

/**
 * The 8-byte subscriber field for the site's account id (docs/token-format.md, "Subscriber"):
 * `secret` is 32 bytes the site keeps to itself (never a token key), `account` a string (UTF-8)
 * or Buffer. No personal identifier reaches a URL.
 */
function subscriberId(secret, client, account) {
  if (!Buffer.isBuffer(secret) || secret.length !== 32) fail('secret must be a 32-byte Buffer');
  if (typeof client !== 'string' || !/^[A-Za-z0-9._-]{1,32}$/.test(client)) {
    fail('client must be 1 to 32 of A-Z a-z 0-9 . _ -');
  }
  return crypto.createHmac('sha256', secret)
    .update(Buffer.concat([Buffer.from(`uritoken-subscriber-v1\n${client}\n`, 'ascii'), Buffer.from(account)]))
    .digest().subarray(0, 8);
}

/**
 * The host name of one media server at one of its addresses (docs/https.md):
 * hostName('203.0.113.7', nodeHash, 'media.example.net') ->
 * '203-0-113-7.<nodeHash>.media.example.net'; IPv6 written out in full.
 */
function hostName(address, nodeHash, zone) {
  if (typeof nodeHash !== 'string' || !/^[0-9a-f]{32}$/.test(nodeHash)) {
    fail('nodeHash must be 32 lower-case hex digits (uritoken node-identity)');
  }
  const apex = String(zone).replace(/\.$/, '').toLowerCase();
  const labels = apex.split('.');
  if (labels.length < 2 || !labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) {
    fail('zone is not a host name (letters, digits and \'-\' in dot-separated labels)');
  }
  const bytes = ipBytes(String(address));
  const label = bytes.length === 4 ? [...bytes].join('-')
    : [0, 2, 4, 6, 8, 10, 12, 14].map((i) => bytes.readUInt16BE(i).toString(16).padStart(4, '0')).join('-');
  const name = `${label}.${nodeHash}.${apex}`;
  if (name.length > 253) fail('zone is too long: the host name would pass 253 characters');
  return name;
}

module.exports = { mint, keyFromBase64url, subscriberId, hostName };
