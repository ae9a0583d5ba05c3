import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { openToken, sealToken, TokenVault } from '../src/vault';

const KEY = 'token-key-0123456789abcdef0123456789abcdef';
const NEW_KEY = 'token-key-NEW-0123456789abcdef0123456789ab';
const alice = { email: 'alice@example.com', upstream: 'notes' };
// Made with Node's own HKDF and AES-256-GCM, not this code: an independent known answer.
const KNOWN_ANSWER = 'v1.AAECAwQFBgcICQoL.CBSM0-XTUNBts1hvVlntOD_TYgXp_1rj-flDraprYtif8aA';

describe("vault: people's own tokens at rest", () => {
  it('seals with HKDF-SHA-256 and AES-256-GCM, bound to the person and upstream (known answer)', async () => {
    const iv = Uint8Array.from({ length: 12 }, (_, i) => i);
    expect(await sealToken(KEY, alice, 'ghp_knownAnswer1234', iv)).toBe(KNOWN_ANSWER);
    expect(await openToken([KEY], alice, KNOWN_ANSWER)).toEqual({ token: 'ghp_knownAnswer1234', keyIndex: 0 });
  });

  it('opens for nobody else: another person, another upstream, another key, or changed bytes', async () => {
    const sealed = await sealToken(KEY, alice, 'ghp_secret');
    expect(await openToken([KEY], { ...alice, email: 'bob@example.com' }, sealed)).toBeUndefined();
    expect(await openToken([KEY], { ...alice, upstream: 'github' }, sealed)).toBeUndefined();
    expect(await openToken([NEW_KEY], alice, sealed)).toBeUndefined();
    const flipped = `${sealed.slice(0, -2)}${sealed.endsWith('A') ? 'B' : 'A'}${sealed.slice(-1)}`;
    expect(await openToken([KEY], alice, flipped)).toBeUndefined();
    expect(await openToken([KEY], alice, 'v1.not.base64!')).toBeUndefined();
  });

  it('uses a fresh IV each time, so one token never seals the same twice', async () => {
    expect(await sealToken(KEY, alice, 'ghp_secret')).not.toBe(await sealToken(KEY, alice, 'ghp_secret'));
  });

  it('stores only ciphertext, one entry per person and upstream, and a copy under another name does not open', async () => {
    const vault = new TokenVault(env.OAUTH_KV, [KEY]);
    await vault.save('carol@example.com', 'notes', 'ghp_carol_SECRET');
    const raw = await env.OAUTH_KV.get('user-token:notes:carol@example.com');
    expect(raw).toMatch(/^v1\./);
    expect(raw).not.toContain('SECRET');
    await env.OAUTH_KV.put('user-token:notes:mallory@example.net', raw ?? '');
    await env.OAUTH_KV.put('user-token:github:carol@example.com', raw ?? '');
    const fresh = new TokenVault(env.OAUTH_KV, [KEY]);
    expect(await fresh.read('mallory@example.net', 'notes')).toBeUndefined();
    expect(await fresh.read('carol@example.com', 'github')).toBeUndefined();
    expect((await fresh.read('carol@example.com', 'notes'))?.token).toBe('ghp_carol_SECRET');
  });

  it('still opens entries under TOKEN_ENCRYPTION_KEY_PREVIOUS and moves them to the new key on use', async () => {
    await new TokenVault(env.OAUTH_KV, [KEY]).save('dave@example.com', 'rotate', 'ghp_dave');
    const before = await env.OAUTH_KV.get('user-token:rotate:dave@example.com');
    expect(await new TokenVault(env.OAUTH_KV, [NEW_KEY]).read('dave@example.com', 'rotate')).toBeUndefined();

    const rotated = new TokenVault(env.OAUTH_KV, [NEW_KEY, KEY]);
    expect((await rotated.read('dave@example.com', 'rotate'))?.token).toBe('ghp_dave');
    const after = await env.OAUTH_KV.get('user-token:rotate:dave@example.com');
    expect(after).not.toBe(before);
    expect(await openToken([NEW_KEY], { email: 'dave@example.com', upstream: 'rotate' }, after ?? '')).toEqual({ token: 'ghp_dave', keyIndex: 0 });
  });

  it('lists who has a token where, and when it was saved, without the tokens', async () => {
    const vault = new TokenVault(env.OAUTH_KV, [KEY]);
    await vault.save('erin@example.com', 'listed', 'ghp_erin_SECRET');
    const listed = (await vault.list()).filter((s) => s.upstream === 'listed');
    expect(listed).toEqual([{ email: 'erin@example.com', upstream: 'listed', savedAt: expect.any(Number) }]);
    expect(JSON.stringify(await vault.list())).not.toContain('SECRET');
  });
});
