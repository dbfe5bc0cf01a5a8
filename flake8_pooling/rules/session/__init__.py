"""Session rules (POL2xx): sessions and connections made at import, shared by everything after."""
