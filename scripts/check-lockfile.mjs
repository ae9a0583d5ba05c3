// The lockfile must install on Linux, macOS and Windows: npm ci refuses a lockfile that lacks the
// platform's workerd build, and a lockfile made with a too-new wrangler lists only Linux's.
import { readFileSync } from 'node:fs';

const PLATFORMS = ['darwin-64', 'darwin-arm64', 'linux-64', 'linux-arm64', 'windows-64'];
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));
const workerd = lock.packages?.['node_modules/workerd']?.version;
const missing = PLATFORMS.filter((platform) => lock.packages?.[`node_modules/@cloudflare/workerd-${platform}`]?.version !== workerd);
if (!workerd || missing.length > 0) {
  console.error(`package-lock.json lacks workerd ${workerd ?? '(none)'} builds for: ${missing.join(', ')}.`);
  console.error('Pin wrangler to a release whose workerd has every platform build, then run npm install.');
  process.exit(1);
}
console.log(`lockfile: workerd ${workerd} for ${PLATFORMS.join(', ')}`);
