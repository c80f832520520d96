// A relying party built on openid-client (panva) with its default settings,
// driven by the e2e tests over stdin and stdout: one JSON request a line in,
// one JSON answer a line out, in order. It keeps what an app keeps between
// the redirect and the callback (PKCE verifier, state, nonce) and reports
// every result, or the library's error, for the Go test to judge.
//
// openid-client comes from the directory named by KEYGATE_E2E_NODE (where
// scripts/e2e-node.sh installed this folder's package-lock.json), or from
// this folder when that is unset. Node must trust the issuer's certificate
// (NODE_EXTRA_CA_CERTS): openid-client refuses plain http by default, and
// this app changes none of its defaults. It only watches the requests go
// by, through customFetch, which hands each to fetch unchanged.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'

if (Number(process.versions.node.split('.')[0]) < 20) {
  process.stderr.write(`rp.mjs: node ${process.version} is too old: openid-client 6 needs Node.js 20 or newer\n`)
  process.exit(1)
}

const here = dirname(fileURLToPath(import.meta.url))
const base = process.env.KEYGATE_E2E_NODE || here
const client = await import(pathToFileURL(createRequire(join(base, 'package.json')).resolve('openid-client')))

// configs are one discovery's result each: 'default' as discovery returns
// it, 'verified' with ID token signatures checked (enableNonRepudiationChecks).
const configs = {}
// pending authorization requests by id: what the app keeps in its session.
const pending = new Map()
// wire records the requests openid-client sent since the last answer:
// endpoint, method, whether an Authorization header was sent, and the
// names (never the values) of the form fields. It only observes: every
// request goes to the global fetch unchanged.
let wire = []

function observe(config) {
  config[client.customFetch] = (url, options) => {
    const body = options.body instanceof URLSearchParams ? [...options.body.keys()] : []
    const headers = new Headers(options.headers)
    wire.push({ url: String(url), method: options.method, authorization: headers.has('authorization'), form: body })
    return fetch(url, options)
  }
}

function tokenResult(tokens) {
  return {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    id_token: tokens.id_token,
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
    claims: tokens.claims(),
  }
}

const ops = {
  async discover({ issuer, client_id, client_secret }) {
    for (const name of ['default', 'verified']) {
      const config = await client.discovery(new URL(issuer), client_id, client_secret)
      if (name === 'verified') client.enableNonRepudiationChecks(config)
      observe(config)
      configs[name] = config
    }
    const md = configs.default.serverMetadata()
    return { metadata: { ...md }, supports_pkce: md.supportsPKCE() }
  },

  // authorize builds the URL the app redirects the browser to, the way
  // openid-client's documentation does it: PKCE S256, and state only when
  // the server does not advertise PKCE. state and nonce ask for them anyway.
  async authorize({ id, par, redirect_uri, scope, state, nonce, params }) {
    const config = configs.default
    const code_verifier = client.randomPKCECodeVerifier()
    const parameters = {
      redirect_uri,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
      code_challenge_method: 'S256',
      ...params,
    }
    const kept = { code_verifier }
    if (state || !config.serverMetadata().supportsPKCE()) kept.state = parameters.state = client.randomState()
    if (nonce) kept.nonce = parameters.nonce = client.randomNonce()
    pending.set(id, kept)
    const url = par
      ? await client.buildAuthorizationUrlWithPAR(config, parameters)
      : client.buildAuthorizationUrl(config, parameters)
    return { url: url.href, state: kept.state, nonce: kept.nonce }
  },

  // callback is the app's redirect URI handler: it checks the response
  // and redeems the code.
  async callback({ id, url, config }) {
    const kept = pending.get(id)
    if (!kept) throw new Error(`no pending authorization request ${id}`)
    pending.delete(id)
    const tokens = await client.authorizationCodeGrant(configs[config], new URL(url), {
      pkceCodeVerifier: kept.code_verifier,
      expectedState: kept.state,
      expectedNonce: kept.nonce,
      idTokenExpected: true,
    })
    return tokenResult(tokens)
  },

  async userinfo({ access_token, sub }) {
    return { userinfo: await client.fetchUserInfo(configs.default, access_token, sub) }
  },

  async refresh({ refresh_token, config }) {
    return tokenResult(await client.refreshTokenGrant(configs[config], refresh_token))
  },

  async introspect({ token }) {
    return { introspection: await client.tokenIntrospection(configs.default, token) }
  },

  async revoke({ token }) {
    await client.tokenRevocation(configs.default, token)
    return {}
  },

  async end_session(parameters) {
    return { url: client.buildEndSessionUrl(configs.default, parameters).href }
  },
}

function describe(err) {
  const out = { name: err?.name, message: String(err?.message ?? err) }
  for (const k of ['code', 'error', 'error_description', 'status']) {
    if (err?.[k] !== undefined) out[k] = err[k]
  }
  if (err?.cause instanceof Error) out.cause = err.cause.message
  return out
}

// Requests are answered one at a time, in the order they came.
let queue = Promise.resolve()
createInterface({ input: process.stdin }).on('line', (line) => {
  queue = queue.then(async () => {
    let answer
    try {
      const req = JSON.parse(line)
      const op = ops[req.op]
      if (!op) throw new Error(`unknown op ${req.op}`)
      answer = { ok: true, ...(await op(req)) }
    } catch (err) {
      answer = { ok: false, error: describe(err) }
    }
    answer.wire = wire
    wire = []
    process.stdout.write(JSON.stringify(answer) + '\n')
  })
})
