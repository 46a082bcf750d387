import { createHash, timingSafeEqual } from 'node:crypto';

/** Why a request's credentials are refused; undefined when they are accepted. */
export type TokenRefusal = 'missing' | 'invalid';

/**
 * Checks an `Authorization` header against the configured token. Both sides are hashed first, so the comparison
 * takes the same time whatever the length or the first differing byte of the token sent.
 */
export function checkBearerToken(authorization: string | undefined, token: string): TokenRefusal | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) return 'missing';
  const sent = createHash('sha256').update(match[1]).digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(sent, expected) ? undefined : 'invalid';
}
