// The stand-in Access (dev/access) is type-checked JavaScript; oidc-provider ships no types.
declare module 'oidc-provider';
