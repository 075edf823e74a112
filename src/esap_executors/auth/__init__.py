"""Authentication (platform OIDC tokens, centre credentials) and authorization (site policy).

config      which issuer and client `esap login` uses (ESCAPE IAM by default; auth.yaml, env, options)
oidc        discovery, device login (RFC 8628), refresh, token exchange (RFC 8693)
jwt_check   access-token validation against the issuer's JWKS; subject and groups
tokens      WLCG bearer-token discovery, oidc-agent, esap's own 0600 cache with automatic refresh
settings    a site's `policy:` and `credentials:` blocks
policy      authorize(): groups admitted, billing applied, limits, every decision audited
redact      keeping tokens out of messages
"""
