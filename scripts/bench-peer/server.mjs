// The benchmark's peer: a minimal node-oidc-provider with the client
// credentials grant and token introspection, one client authenticating with
// client_secret_basic, opaque access tokens, and the provider's default
// in-memory adapter (nothing durable: that favours the peer, since Latchkey's
// production stack writes PostgreSQL and Redis). `latchkey-bench --peer`
// installs oidc-provider next to a copy of this file and runs it with
// NODE_ENV=production.
//
// Environment: PEER_PORT, PEER_CLIENT_ID, PEER_CLIENT_SECRET.
import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT);
const clientId = process.env.PEER_CLIENT_ID;
const clientSecret = process.env.PEER_CLIENT_SECRET;
if (!port || !clientId || !clientSecret) {
  console.error('PEER_PORT, PEER_CLIENT_ID and PEER_CLIENT_SECRET are required');
  process.exit(64);
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'bench.read',
    },
  ],
  scopes: ['bench.read'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  // A day, as Latchkey's bench projects: no token expires during a run.
  ttl: { ClientCredentials: 86400 },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on 127.0.0.1:${port}`);
});
