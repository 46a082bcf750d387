import { describe, expect, test } from '@jest/globals';
import { checkBearerToken } from './admin-token.js';

const TOKEN = 'a-long-admin-token-42';

describe('checkBearerToken', () => {
  test('accepts the token as a bearer token, the scheme in any case', () => {
    expect(checkBearerToken(`Bearer ${TOKEN}`, TOKEN)).toBeUndefined();
    expect(checkBearerToken(`bearer ${TOKEN}`, TOKEN)).toBeUndefined();
  });

  test.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['the token without a scheme', TOKEN],
    ['another scheme', `Basic ${TOKEN}`],
    ['a scheme without a token', 'Bearer '],
    ['two tokens', `Bearer ${TOKEN} ${TOKEN}`],
  ])('missing with %s', (_, header) => {
    expect(checkBearerToken(header, TOKEN)).toBe('missing');
  });

  test.each([
    ['a prefix of the token', TOKEN.slice(0, -1)],
    ['the token and more', `${TOKEN}x`],
    ['one character changed', `${TOKEN.slice(0, -1)}3`],
    ['another case', TOKEN.toUpperCase()],
  ])('invalid with %s', (_, sent) => {
    expect(checkBearerToken(`Bearer ${sent}`, TOKEN)).toBe('invalid');
  });
});
