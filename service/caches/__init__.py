"""The response cache: one protocol (``store``), one rule for what is kept (``entries``), two
stores (a SQLite file for one machine, Redis for several)."""
