"""Authentication (platform OIDC tokens, centre credentials) and authorization (site policy)."""
