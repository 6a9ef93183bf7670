// SPDX-License-Identifier: Apache-2.0
'use strict';
// The client-site API of mod_uritoken (docs/client-api.md): node's crypto,
// http and https only. A client site revokes its own tokens and reads its
// verdicts on any media node, with requests signed by its own token key.
//
//   const { keyFromBase64url } = require('./uritoken_mint');
//   const { revoke, feed } = require('./uritoken_client');
//   const key = keyFromBase64url('<secret column of the key file line>');
//   const api = 'https://media.example.net/uritoken/client';
//   await revoke(api, key, 7, { token: tokenOrUrl, comment: 'logout' });
//   let page = await feed(api, key, 7);          // { verdicts, next, more }
//   page = await feed(api, key, 7, { after: page.next });
//
// Signatures are pinned by tests/vectors/client-requests.txt
// (test_client_vectors.js).

const crypto = require('crypto');
const http = require('http');
const https = require('https');

const LABEL = 'uritoken-client-v1';

class ClientApiError extends Error {
  constructor(status, error, message) {
    super(`HTTP ${status} ${error}: ${message}`);
    Object.assign(this, { status, error, detail: message });
  }
}

/** The four X-UriToken-* headers for one request; target is the path and query as sent. */
function signClientRequest(key, keyId, method, target, body = '', { time, nonce } = {}) {
  if (!Buffer.isBuffer(key) || key.length !== 32) throw new RangeError('key must be the 32-byte secret');
  if (!Number.isInteger(keyId) || keyId < 1 || keyId > 65535) throw new RangeError('keyId must be 1..65535');
  time = time === undefined ? Math.floor(Date.now() / 1000) : time;
  nonce = nonce === undefined ? crypto.randomBytes(16).toString('base64url') : nonce;
  const mac = crypto.createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(`${LABEL}\n${method}\n${target}\n${time}\n${nonce}\n`), Buffer.from(body)]))
    .digest();
  return {
    'X-UriToken-Key': String(keyId),
    'X-UriToken-Time': String(time),
    'X-UriToken-Nonce': nonce,
    'X-UriToken-Signature': mac.toString('base64url'),
  };
}

// encodeURIComponent leaves !'()* alone; the form encoding here escapes them too.
function formEncode(fields) {
  const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return fields.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
}

function call(method, url, key, keyId, body = '', options = {}) {
  const u = new URL(url);
  const headers = signClientRequest(key, keyId, method, u.pathname + u.search, body);
  if (method === 'POST') {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  const transport = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(u, { method, headers, timeout: 10000, ca: options.ca }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let answer = {};
        try {
          answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (e) { /* not JSON: reported below */ }
        if (res.statusCode === 200) resolve(answer);
        else reject(new ClientApiError(res.statusCode, answer.error || 'unknown', answer.message || ''));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(method === 'POST' ? body : undefined);
  });
}

/**
 * Revokes one of the client's tokens on every node: { token } (or a URL), or { session, tokenKeyId, expires };
 * or { subscriber } (16 hex digits, the token field): every token so far of that subscriber (with
 * issuedBefore, a unix time not in the future: those issued before it).
 */
function revoke(apiUrl, key, keyId, {
  token, session, tokenKeyId, expires, subscriber, issuedBefore, comment, ca,
} = {}) {
  const fields = subscriber !== undefined ? [['subscriber', subscriber]]
    : token !== undefined ? [['token', token]]
      : [['key', String(tokenKeyId)], ['session', session], ['expires', String(expires)]];
  if (subscriber !== undefined && issuedBefore !== undefined) fields.push(['issued_before', String(issuedBefore)]);
  if (comment !== undefined) fields.push(['comment', comment]);
  return call('POST', apiUrl, key, keyId, formEncode(fields), { ca });
}

/** One page of the client's verdicts after the cursor `after` (a page's next). */
function feed(apiUrl, key, keyId, { after, limit, ca } = {}) {
  const query = [['after', after], ['limit', limit]].filter(([, v]) => v).map(([k, v]) => [k, String(v)]);
  return call('GET', apiUrl + (query.length ? '?' + formEncode(query) : ''), key, keyId, '', { ca });
}

/**
 * Checks where a refused viewer was sent back (UriTokenReturnURL, docs/client-api.md). `keys` maps
 * key ids to 32-byte secrets. Returns { reason, keyId, session (or null), time, path } if the
 * signature is good and the time within maxAge seconds, else null.
 */
function verifyReturn(urlOrQuery, keys, { now, maxAge = 300 } = {}) {
  const query = urlOrQuery.includes('://') ? new URL(urlOrQuery).search : urlOrQuery;
  const f = new URLSearchParams(query);
  const keyId = Number(f.get('uritoken_key')), time = Number(f.get('uritoken_time'));
  const reason = f.get('uritoken_reason'), path = f.get('uritoken_path'), sig = f.get('uritoken_sig');
  const session = f.get('uritoken_session') || '';
  if (!Number.isInteger(keyId) || !Number.isInteger(time) || reason === null || path === null || sig === null) return null;
  const key = keys instanceof Map ? keys.get(keyId) : keys[keyId];
  now = now === undefined ? Math.floor(Date.now() / 1000) : now;
  if (!key || Math.abs(now - time) > maxAge) return null;
  const want = crypto.createHmac('sha256', key)
    .update(['uritoken-return-v1', reason, String(keyId), session, String(time), path].join('\n')).digest();
  const got = Buffer.from(sig, 'base64url');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want) || got.toString('base64url') !== sig) return null;
  return { reason, keyId, session: session || null, time, path };
}

module.exports = { signClientRequest, revoke, feed, verifyReturn, ClientApiError };
