import dns from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** A fetch the SSRF rules refused, or that failed in a way the user should hear about. */
export class FetchRefused extends Error {}

export interface SafeFetchOptions {
  /** Extra networks (CIDR) or host names that may be reached although private. @default [] */
  allow: string[];
  /** Most redirects followed. @default 3 */
  maxRedirects: number;
  connectTimeoutMs: number;
  /** Longest silence on the connection while waiting or reading. */
  idleTimeoutMs: number;
}

/**
 * Whether an address may be fetched: public unicast only, unless allow-listed.
 * IPv4-mapped IPv6 is judged as the IPv4 it carries; 6to4 and Teredo, which tunnel
 * to arbitrary IPv4, are refused along with loopback, private, link-local (cloud
 * metadata at 169.254.169.254), multicast and reserved ranges.
 */
export function isAddressAllowed(address: string, allow: readonly string[]): boolean {
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  for (const entry of allow) {
    if (!entry.includes('/')) continue;
    const [range, bits] = ipaddr.parseCIDR(entry);
    if (range.kind() === ip.kind() && ip.match([range, bits] as never)) return true;
  }
  return ip.range() === 'unicast';
}

function checkedLookup(allow: readonly string[], host: string): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, family: options.family }, (error, addresses) => {
      if (error) return callback(error, '', 4);
      const allowHost = allow.includes(host.toLowerCase());
      const usable = addresses.filter((a) => allowHost || isAddressAllowed(a.address, allow));
      if (usable.length === 0) {
        return callback(new FetchRefused(`${hostname} resolves to an address that may not be fetched`), '', 4);
      }
      // Connecting to exactly the address that was checked: a second DNS answer cannot slip in.
      if ((options as { all?: boolean }).all)
        return (callback as never as (e: null, a: dns.LookupAddress[]) => void)(null, usable);
      callback(null, usable[0].address, usable[0].family);
    });
  };
}

/** What a request sends besides the URL: GET with no body unless told otherwise; `signal` ends it. */
interface Outgoing {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

const GET: Outgoing = { method: 'GET', headers: { 'user-agent': 'assetgate-import/1', accept: '*/*' } };

function requestOnce(url: URL, options: SafeFetchOptions, outgoing: Outgoing = GET): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (ipaddr.isValid(host) && !isAddressAllowed(host, options.allow) && !options.allow.includes(host)) {
    return Promise.reject(new FetchRefused(`${host} is an address that may not be fetched`));
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: outgoing.method,
      lookup: checkedLookup(options.allow, host),
      headers: {
        ...outgoing.headers,
        ...(outgoing.body !== undefined && { 'content-length': String(Buffer.byteLength(outgoing.body)) }),
      },
      timeout: options.idleTimeoutMs,
      signal: outgoing.signal,
    });
    req.end(outgoing.body);
    const connectTimer = setTimeout(
      () => req.destroy(new FetchRefused(`no connection to ${url.host} within ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    req.on('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
    });
    req.on('timeout', () => req.destroy(new FetchRefused(`${url.host} went silent for ${options.idleTimeoutMs} ms`)));
    req.on('error', (error) => {
      clearTimeout(connectTimer);
      reject(error);
    });
    req.on('response', (response) => {
      clearTimeout(connectTimer);
      resolve(response);
    });
  });
}

/**
 * GETs a URL from the open internet without letting it reach inside: only http
 * and https, every address checked after DNS resolution and used as checked at
 * connect time, at every redirect hop. Resolves the 2xx response, its body unread.
 */
export async function safeFetch(
  raw: string,
  options: SafeFetchOptions,
): Promise<{ response: IncomingMessage; url: URL }> {
  let url = new URL(raw);
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new FetchRefused(`${url.protocol} URLs may not be fetched`);
    const response = await requestOnce(url, options);
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (hop >= options.maxRedirects) throw new FetchRefused(`more than ${options.maxRedirects} redirects`);
      url = new URL(response.headers.location, url);
      continue;
    }
    if (status < 200 || status >= 300) {
      response.resume();
      throw new FetchRefused(`the source answered HTTP ${status}`);
    }
    return { response, url };
  }
}

/**
 * POSTs `body` under the same rules as `safeFetch` (http and https only, every address
 * checked after DNS and connected to as checked); redirects are not followed (a
 * webhook that redirects is a failed delivery). Resolves the response's status, its
 * body read to the end and dropped. `signal` ends the whole exchange (connect, send,
 * answer, body) wherever it is: the socket is closed and the promise rejects.
 */
export async function safePost(
  raw: string,
  body: string,
  request: { headers: Record<string, string>; options: SafeFetchOptions; signal?: AbortSignal },
): Promise<number> {
  const url = new URL(raw);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new FetchRefused(`${url.protocol} URLs may not be reached`);
  const { signal } = request;
  const outgoing = { method: 'POST', headers: request.headers, body, signal };
  const response = await requestOnce(url, request.options, outgoing);
  response.resume();
  const abort = () => response.destroy(new FetchRefused('the exchange was cut short', { cause: signal?.reason }));
  signal?.addEventListener('abort', abort, { once: true });
  try {
    if (signal?.aborted) abort();
    await new Promise<void>((resolve, reject) => {
      response.once('end', resolve);
      response.once('error', reject);
    });
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  return response.statusCode ?? 0;
}
