import { env } from 'cloudflare:test';
import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

describe('smoke', () => {
  it('answers', async () => {
    const res = await exports.default.fetch('https://gw.example/health');
    expect(res.status).toBe(200);
    expect(env.OAUTH_KV).toBeDefined();
  });
});
