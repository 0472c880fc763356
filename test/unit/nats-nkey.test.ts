import { nkeyAuthenticator as natsCoreNkeyAuthenticator } from '@nats-io/nats-core';
import { createUser } from '@nats-io/nkeys';
import { nkeyAuthenticator } from '../../common/nats-auth';

// Causeway signs NATS's nonce with Node's Ed25519; the server must see what nats-core's own sends.
describe('nkeyAuthenticator', () => {
  it('sends the public key and signature nats-core does', () => {
    for (let i = 0; i < 5; i++) {
      const seed = createUser().getSeed();
      const nonce = `nonce-${i}-${Math.random()}`;
      expect(nkeyAuthenticator(seed)(nonce)).toEqual(natsCoreNkeyAuthenticator(seed)(nonce));
      expect(nkeyAuthenticator(seed)(undefined)).toEqual(natsCoreNkeyAuthenticator(seed)(undefined));
    }
  });
});
