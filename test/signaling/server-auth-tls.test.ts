import { afterEach, describe, expect, it } from 'vitest';
import { Harness, TLS_CERT, TLS_KEY, assertServes, httpGet, httpUrl, upgradeStatus } from './server-helpers.js';

const h = new Harness();
afterEach(() => h.cleanup());

const TOKEN = 'correct-horse-battery-staple-42';

describe('access token', () => {
  it('refuses upgrades with a missing or wrong token with 401 and accepts the right one', async () => {
    const s = await h.server({ token: TOKEN });
    expect(await upgradeStatus(s.url)).toBe(401);
    expect(await upgradeStatus(`${s.url}?token=wrong`)).toBe(401);
    expect(await upgradeStatus(`${s.url}?token=${TOKEN.slice(0, -1)}`)).toBe(401);
    expect(await upgradeStatus(`${s.url}?token=`)).toBe(401);
    expect(await upgradeStatus(`${s.url}?token=${TOKEN}`)).toBe(101);
    // Any path works, as with RxDB's server; the token rides in the query string RxDB clients pass unchanged.
    expect(await upgradeStatus(`${s.url}signal?room=x&token=${encodeURIComponent(TOKEN)}`)).toBe(101);
    expect(await upgradeStatus(s.url, { headers: { Authorization: `Bearer ${TOKEN}` } })).toBe(101);
    expect(await upgradeStatus(s.url, { headers: { Authorization: 'Bearer nope' } })).toBe(401);
    await assertServes(h, `${s.url}?token=${TOKEN}`);
    const m = await httpGet(httpUrl(s, `/metrics?token=${TOKEN}`));
    expect(m.body).toMatch(/^p2psync_signal_upgrades_refused_total\{reason="unauthorized"\} 5$/m);
  });

  it('accepts tokens with characters that need URL encoding', async () => {
    const token = 'a b&c=d/é?#%';
    const s = await h.server({ token });
    expect(await upgradeStatus(`${s.url}?token=${encodeURIComponent(token)}`)).toBe(101);
    expect(await upgradeStatus(`${s.url}?token=${encodeURIComponent('a b&c=d/é?#')}`)).toBe(401);
  });

  it('keeps /healthz open and protects /metrics with the token (query or bearer)', async () => {
    const s = await h.server({ token: TOKEN });
    expect((await httpGet(httpUrl(s, '/healthz'))).status).toBe(200);
    const denied = await httpGet(httpUrl(s, '/metrics'));
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(denied.body).not.toMatch(/p2psync_signal/);
    expect((await httpGet(httpUrl(s, '/metrics?token=nope'))).status).toBe(401);
    expect((await httpGet(httpUrl(s, `/metrics?token=${TOKEN}`))).status).toBe(200);
    expect((await httpGet(httpUrl(s, '/metrics'), { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('rejects an empty token as a bad option', async () => {
    await expect(h.server({ token: '' })).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
  });
});

describe('TLS', () => {
  it('serves wss:// and https:// with the given certificate', async () => {
    const s = await h.server({ tls: { cert: TLS_CERT, key: TLS_KEY }, host: '127.0.0.1' });
    expect(s.url).toBe(`wss://127.0.0.1:${s.port}/`);
    // The fixture is self-signed: trust it as a CA, so hostname verification still runs.
    const c = await h.client(s.url, { ca: TLS_CERT });
    await c.init();
    expect(c.peerId).toMatch(/^[a-z]{16}$/);
    const health = await httpGet(httpUrl(s, '/healthz'));
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', sockets: 1 });
    // Without trusting the certificate the handshake fails; with verification off it works.
    await expect(h.client(s.url)).rejects.toThrow();
    const insecure = await h.client(s.url, { rejectUnauthorized: false });
    await insecure.init();
  });

  it('combines TLS and a token', async () => {
    const s = await h.server({ tls: { cert: TLS_CERT, key: TLS_KEY }, token: TOKEN });
    expect(await upgradeStatus(s.url, { ca: TLS_CERT })).toBe(401);
    expect(await upgradeStatus(`${s.url}?token=${TOKEN}`, { ca: TLS_CERT })).toBe(101);
  });

  it('rejects bad TLS material with E_TLS_FILE', async () => {
    await expect(h.server({ tls: { cert: 'not a certificate', key: TLS_KEY } })).rejects.toMatchObject({
      code: 'E_TLS_FILE',
    });
    await expect(h.server({ tls: { cert: TLS_CERT, key: 'not a key' } })).rejects.toMatchObject({ code: 'E_TLS_FILE' });
    await expect(h.server({ tls: { cert: TLS_KEY, key: TLS_CERT } })).rejects.toMatchObject({ code: 'E_TLS_FILE' });
    await expect(h.server({ tls: { cert: '', key: TLS_KEY } })).rejects.toMatchObject({ code: 'E_TLS_FILE' });
  });
});

describe('binding', () => {
  it('rejects with E_ADDR_IN_USE when the port is taken', async () => {
    const first = await h.server();
    const err = await h.server({ port: first.port }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'P2PSyncError', code: 'E_ADDR_IN_USE', details: { port: first.port } });
    await assertServes(h, first.url);
  });

  it('binds 127.0.0.1 by default and reports the real port for port 0', async () => {
    const s = await h.server();
    expect(s.host).toBe('127.0.0.1');
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`ws://127.0.0.1:${s.port}/`);
  });

  it('brackets IPv6 hosts in the URL', async () => {
    const s = await h.server({ host: '::1' }).catch((e: unknown) => e);
    // Some containers have no IPv6 loopback: then binding it must fail as a bad host, not crash.
    if (s instanceof Error) expect(s).toMatchObject({ code: 'E_BAD_OPTION' });
    else expect(s).toMatchObject({ host: '::1', url: expect.stringMatching(/^ws:\/\/\[::1\]:\d+\/$/) });
  });

  it('rejects bad options up front', async () => {
    await expect(h.server({ port: 70_000 })).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
    await expect(h.server({ port: -1 })).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
    await expect(h.server({ host: '' })).rejects.toMatchObject({ code: 'E_BAD_OPTION' });
  });
});
