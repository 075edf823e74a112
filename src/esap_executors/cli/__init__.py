"""The `esap` command line."""
