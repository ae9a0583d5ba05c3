/** `__Host-` cookies: Secure, HttpOnly, SameSite=Lax, the whole origin and no Domain. */

/** A Set-Cookie value; `maxAge` 0 with an empty value clears it. */
export function hostCookie(name: string, value: string, maxAge: number): string {
  return `${name}=${value}; Max-Age=${maxAge}; Path=/; Secure; HttpOnly; SameSite=Lax`;
}

/** The value of one cookie the request carries, or undefined. */
export function readCookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get('Cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
