"""Who may see and do what: accounts, roles and passwords, server-side sessions, the sign-in
throttle (accounts.py) and the append-only log of every access to children's data (log.py).

Used by the web workspace and the command line alike; it keeps its records in the store.
"""
