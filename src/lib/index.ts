/**
 * Tiny shared helpers. src/ modules import the file they need; tests import what is exported here.
 */
export { base64url, fromBase64url } from './base64url';
export { parseExactJson } from './exact-json';
