/**
 * Whether a form POST came from another site. Browsers always send `Origin` on a cross-origin
 * POST, so a different one is refused; a missing one cannot be a cross-site browser post, and
 * every form here also carries a browser-bound handle or token that another site cannot read.
 */
export function isCrossSitePost(request: Request, origin: string): boolean {
  const from = request.headers.get('Origin');
  return from !== null && from !== origin;
}
